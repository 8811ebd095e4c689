/**
 * The layers of src/, bottom to top, written once (docs/ARCHITECTURE.md, "Allowed imports").
 * `npm test` runs `npm run lint:deps` after the build: an import against the flow, or any cycle,
 * fails it. test/ and bench/ may import anything of src/.
 *
 * A module may import its own group, any group of a LOWER layer, and a group of its OWN layer only
 * where `alsoMay` lists it (each such arrow says why). Never a higher layer: the rules below are
 * generated from this list, one per group.
 */
const LAYERS = [
  // 0. Node and Linux helpers with no opinion about events: /proc, the native addon, IP text,
  //    DNS wire format, glob, LRU, the logger, the state folder, package version. Imports nothing
  //    else of src.
  [{ name: 'platform', path: '^src/platform/' }],
  // 1. Shapes and knowledge every stage shares.
  [
    { name: 'events', path: '^src/events\\.ts$' },
    // What is known about miners (pools, wallets, stratum, flags, IOCs) and secrets' shapes.
    { name: 'knowledge', path: '^src/knowledge/' },
    // The config machinery with no sections in it (the registry, problems, YAML line mapping):
    // a section's owner, low or high, can report file:line through it.
    { name: 'config-kit', path: '^src/config/(registry|problems|yaml-file)\\.ts$' },
    // The Kubernetes API client and the shapes of its objects (audit events, workloads): the ka.*
    // fields, the audit-log source, pod enrichment, the k8s actions and token review all read them.
    // An audit event is a PluginEvent, hence the arrow to events.
    { name: 'k8s-api', path: '^src/k8s-api/', alsoMay: ['events'] },
  ],
  // 2. Field extraction (Falco's field catalog and ours).
  [{ name: 'fields', path: '^src/fields/' }],
  // 3. The rules language: load, compile, match, format output.
  [{ name: 'engine', path: '^src/engine/' }],
  // 4. What makes events and what fills them in.
  [
    { name: 'enrich', path: '^src/enrich/' },
    // The eBPF source feeds the DNS cache (enrich/dns) from the answers it sees, so a connection's
    // name is known the moment it opens; enrich never imports a source.
    { name: 'sources', path: '^src/sources/', alsoMay: ['enrich'] },
  ],
  // 5. What acts on a match or an event.
  [
    // Actions (kill, kill_container, block_destination, the k8s actions) and their dispatcher.
    { name: 'response', path: '^src/response/' },
    // One folder per detector; a detector returns action requests (response/types.ts).
    { name: 'detectors', path: '^src/detectors/', alsoMay: ['response'] },
  ],
  // 6. Alerts: throttle, group, store, redact, outputs.
  [{ name: 'alerts', path: '^src/alerts/' }],
  // 7. The config file: every section's schema put together (sections.ts) and loaded (load.ts).
  //    Sections of folders below are theirs; those of the folders above (web, k8s, github) live
  //    here, since config may not import upward.
  [{ name: 'config', path: '^src/config/(?!(registry|problems|yaml-file)\\.ts$)' }],
  // 8. EventPipeline: enrich → detectors → engine → response → alert sink.
  [{ name: 'pipeline', path: '^src/pipeline/' }],
  // 9. What runs the pipeline or serves beside it.
  [
    { name: 'web', path: '^src/web/' },
    // The admission and audit webhooks and the GitHub webhook are routes on web's server: they
    // take its route types (web/types.ts) and its token check (web/auth.ts).
    { name: 'k8s', path: '^src/k8s/', alsoMay: ['web'] },
    { name: 'github', path: '^src/github/', alsoMay: ['web'] },
    // Fleet mode's server side: the JetStream consumer into the store, and /readyz (a route on web's server).
    { name: 'fleet', path: '^src/fleet/', alsoMay: ['web'] },
    // The agent starts the k8s side of a node agent (k8s/agent-k8s.ts: pod watch, k8s actions).
    { name: 'agent', path: '^src/agent/', alsoMay: ['k8s'] },
  ],
  // 10. The composition root (src/app/: run and server put together, reload): builds the
  //     pipeline, the agent, the web server and the webhooks from one config.
  [{ name: 'app', path: '^src/app/' }],
  // 11. Commands, and the package's public entry (the engine API).
  [
    { name: 'cli', path: '^src/cli/' },
    { name: 'entry', path: '^src/index\\.ts$' },
  ],
];

const groups = LAYERS.flatMap((layer, level) => layer.map((g) => ({ ...g, level })));

const layerRules = groups.map((g) => {
  const notAllowed = groups.filter((o) => o !== g && o.level >= g.level && !(g.alsoMay ?? []).includes(o.name));
  return {
    name: `layer-${g.name}`,
    severity: 'error',
    comment: `${g.name} (layer ${g.level}) may import only lower layers${g.alsoMay ? ` and ${g.alsoMay.join(', ')}` : ''}: see LAYERS in .dependency-cruiser.cjs`,
    from: { path: g.path },
    to: { path: notAllowed.map((o) => o.path) },
  };
});
// The pending arrows: the one source file keeps its layer's rule for every other import.
for (const g of groups) {
  for (const a of g.alsoMay ?? []) {
    const target = groups.find((o) => o.name === a);
    if (!target || target.level !== g.level) throw new Error(`.dependency-cruiser.cjs: ${g.name}.alsoMay names ${a}, which is not a group of its layer`);
  }
}

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'A cycle: two modules that need each other are one module, or one of them has a piece that belongs lower.',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'src-not-to-test',
      severity: 'error',
      comment: 'src/ never imports test/ or bench/.',
      from: { path: '^src/' },
      to: { path: '^(test|bench)/' },
    },
    ...layerRules,
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules)/' },
    // Type-only imports count: a type from a higher layer ties the layers as surely as a value.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
    cache: false,
  },

};
