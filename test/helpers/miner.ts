/** What the live tests' fake miner carries, and the rules it must set off (one place for the e2e suites). */

/** A Monero address in the shape the wallet rules look for (the tests' fake miner passes it with -u). */
export const WALLET = '47G3GoGjMfaPvUEh9DmeZ8WmxrAsZ5uxc2jCSi4dHJTUMbz2VBYaXVkTQVwbRBLv9QZPfqsnEVfSaWzDDuiitAwSGsamcTK';

/** Every miner rule the fake miner must set off (names as in rules/minewatch_rules.yaml). */
export const MINER_RULES = [
  'Known Miner Program Launched',
  'Mining Pool URL in Command Line',
  'Miner Options in Command Line',
  'Wallet Address in Command Line or Environment',
  'Outbound Connection to a Mining Pool',
] as const;
