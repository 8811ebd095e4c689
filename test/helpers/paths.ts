/** Where tests find their inputs. Compiled tests run from dist/test/, so paths climb from there. */
import { fileURLToPath } from 'node:url';

/** The project root (two levels above dist/test/helpers/… is dist/, three is the root). */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** ../shared beside the checkout (MINEWATCH_SHARED overrides). */
export const SHARED = process.env.MINEWATCH_SHARED ?? fileURLToPath(new URL('../../../../shared/', import.meta.url));
export const FALCO_CORPUS = `${SHARED}corpus/falco/`;
export const K8S_AUDIT_CORPUS = `${SHARED}corpus/k8s-audit/`;
export const FIXTURES = `${ROOT}test/fixtures/`;
export const CLI = `${ROOT}dist/src/cli/main.js`;
