#!/usr/bin/env node
// Runs when `node-gyp-build` found no prebuild for this platform and could not compile the addon
// (no compiler, no Node headers, not Linux). The install must go on: the agent then uses the /proc
// poller, which needs neither the addon nor root. One line, so it is read rather than scrolled past.
'use strict';
process.stderr.write(
  'minewatch: native proc-connector addon not built (needs Linux, g++, make, python3); ' +
    'the agent will use the /proc poller instead. To retry: npm rebuild minewatch\n',
);
process.exit(0);
