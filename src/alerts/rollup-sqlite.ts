/**
 * The hourly rollups in the SQLite store (src/alerts/rollup.ts says what they count): a table and
 * the triggers that keep it equal to the groups in the transaction that writes them.
 */
import { dayOfHour, DIMS } from './rollup.js';

const COLS = '(dim, hour, prank, value, n_groups, n_matches)';
const UPSERT = 'ON CONFLICT(dim, hour, prank, value) DO UPDATE SET n_groups = n_groups + excluded.n_groups, n_matches = n_matches + excluded.n_matches';

/** The statements that add (sign 1) or take out (-1) the group in `row` ('new' or 'old'). */
function count(row: 'new' | 'old', sign: 1 | -1): string {
  const m = sign < 0 ? `-${row}.count` : `${row}.count`;
  const hour = `${row}.last_seen / 3600000000000`;
  const dims: [string, string, string, string][] = [
    [DIMS.rule, hour, `${row}.rule`, 'true'],
    [DIMS.namespace, hour, `${row}.namespace`, `${row}.namespace IS NOT NULL`],
    [DIMS.hostname, hour, `${row}.hostname`, 'true'],
    [DIMS.namespaceDaily, dayOfHour(hour), `${row}.namespace`, `${row}.namespace IS NOT NULL`],
    [DIMS.hostnameDaily, dayOfHour(hour), `${row}.hostname`, 'true'],
  ];
  return dims.map(([d, h, v, when]) => `  INSERT INTO rollup_hourly ${COLS} SELECT '${d}', ${h}, ${row}.prank, ${v}, ${sign}, ${m} WHERE ${when} ${UPSERT};`).join('\n');
}

export const SQLITE_ROLLUP_SCHEMA = `
CREATE TABLE IF NOT EXISTS rollup_hourly (
  dim TEXT NOT NULL,
  hour INTEGER NOT NULL,
  prank INTEGER NOT NULL,
  value TEXT NOT NULL,
  n_groups INTEGER NOT NULL,
  n_matches INTEGER NOT NULL,
  PRIMARY KEY (dim, hour, prank, value)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS alerts_rollup_ins AFTER INSERT ON alerts BEGIN
${count('new', 1)}
END;
CREATE TRIGGER IF NOT EXISTS alerts_rollup_upd AFTER UPDATE OF count, last_seen ON alerts
WHEN old.count <> new.count OR old.last_seen <> new.last_seen BEGIN
${count('old', -1)}
${count('new', 1)}
END;
CREATE TRIGGER IF NOT EXISTS alerts_rollup_del AFTER DELETE ON alerts BEGIN
${count('old', -1)}
END;
`;

/** Recount every rollup row from the groups (a store older than the rollups; bulk loads). */
export const SQLITE_ROLLUP_REBUILD = `
DELETE FROM rollup_hourly;
INSERT INTO rollup_hourly ${COLS} SELECT '${DIMS.rule}', last_seen / 3600000000000, prank, rule, COUNT(*), SUM(count) FROM alerts GROUP BY 2, 3, 4;
INSERT INTO rollup_hourly ${COLS} SELECT '${DIMS.namespace}', last_seen / 3600000000000, prank, namespace, COUNT(*), SUM(count) FROM alerts WHERE namespace IS NOT NULL GROUP BY 2, 3, 4;
INSERT INTO rollup_hourly ${COLS} SELECT '${DIMS.hostname}', last_seen / 3600000000000, prank, hostname, COUNT(*), SUM(count) FROM alerts GROUP BY 2, 3, 4;
INSERT INTO rollup_hourly ${COLS} SELECT '${DIMS.namespaceDaily}', hour / 24 * 24, prank, value, SUM(n_groups), SUM(n_matches) FROM rollup_hourly WHERE dim = '${DIMS.namespace}' GROUP BY 2, 3, 4;
INSERT INTO rollup_hourly ${COLS} SELECT '${DIMS.hostnameDaily}', hour / 24 * 24, prank, value, SUM(n_groups), SUM(n_matches) FROM rollup_hourly WHERE dim = '${DIMS.hostname}' GROUP BY 2, 3, 4;
`;
