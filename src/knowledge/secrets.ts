/**
 * Secrets in a pushed diff: the kinds Falco's github plugin looks for (AWS keys, GitHub tokens,
 * Slack tokens and webhooks, private keys, Google, Stripe, SendGrid, Twilio, Mailgun, Square,
 * Shopify, PyPI, Dynatrace, …), with their descriptions under the plugin's names so
 * github.diff.committed_secrets.desc reads the same. Only added lines are read, and a match is
 * reported as file, line and kind: never the secret itself, which must not travel further in an
 * alert than it already has.
 *
 * Left out on purpose: the plugin's "any 12 letters near the word linkedin/twitter/facebook" and
 * AWS account ids (an account id is not a secret); they flag ordinary code. A 40-hex value (a git
 * sha) is not taken for an AWS secret key.
 */

export interface SecretKind {
  /** Falco's name for it, e.g. aws_access_key. */
  desc: string;
  /** key, token, secret, … */
  type: string;
  platform: string;
  re: RegExp;
}

export interface SecretMatch {
  line: number;
  type: string;
  desc: string;
  platform: string;
}

export interface DiffFileSecrets {
  name: string;
  matches: SecretMatch[];
}

const k = (desc: string, platform: string, re: RegExp, type = 'key'): SecretKind => ({ desc, type, platform, re });

export const SECRET_KINDS: SecretKind[] = [
  k('aws_access_key', 'AWS', /\b(?:A3T[A-Z0-9]|AKIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ASIA)[A-Z0-9]{16}\b/),
  k('aws_secret_key', 'AWS', /(?:aws)?_?(?:secret)?_?(?:access)?_?key["']?\s*(?::|=>|=)\s*["']?(?![0-9a-f]{40}(?![A-Za-z0-9/+=]))[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])/i),
  k('aws_mws_key', 'AWS', /amzn\.mws\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/),
  k('github_personal_access_token', 'Github', /\bghp_[0-9a-zA-Z]{36}\b/),
  k('github_fine_grained_token', 'Github', /\bgithub_pat_[0-9a-zA-Z_]{82}\b/),
  k('github_oauth_access_token', 'Github', /\bgho_[0-9a-zA-Z]{36}\b/),
  k('github_app_token', 'Github', /\b(?:ghu|ghs)_[0-9a-zA-Z]{36}\b/),
  k('github_refresh_token', 'Github', /\bghr_[0-9a-zA-Z]{76}\b/),
  k('slack', 'Slack', /\bxox[baprs]-[0-9A-Za-z-]{10,}/),
  k('slack_webhook', 'slack', /https:\/\/hooks\.slack\.com\/services\/T[A-Za-z0-9_]{8,12}\/B[A-Za-z0-9_]{8,12}\/[A-Za-z0-9_]{24}/),
  k('asymmetric_private_key', 'AsymmetricPrivateKey', /-----BEGIN (?:(?:EC|PGP|DSA|RSA|OPENSSH|ENCRYPTED) )?PRIVATE KEY(?: BLOCK)?-----/),
  k('google_api_key', 'Google', /\bAIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])/),
  k('google_gcp_service_account', 'Google', /"type"\s*:\s*"service_account"/),
  k('heroku_api_key', 'Heroku', /heroku.{0,20}\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/i),
  k('mailchimp_api_key', 'Mailchimp', /\b[0-9a-f]{32}-us[0-9]{1,2}\b/),
  k('mailgun_api_key', 'Mailgun', /\bkey-[0-9a-z]{32}\b/),
  k('paypal_braintree_access_token', 'Paypal', /access_token\$production\$[0-9a-z]{16}\$[0-9a-f]{32}/),
  k('picatic_api_key', 'Picatic', /\bsk_live_[0-9a-z]{32}\b/),
  k('sendgrid_api_key', 'SendGrid', /\bSG\.[\w-]{16,32}\.[\w-]{16,64}\b/),
  k('stripe_api_key', 'Stripe', /\b[sr]k_live_[0-9a-zA-Z]{24,99}\b/),
  k('square_access_token', 'square', /\bsq0atp-[0-9A-Za-z_-]{22}\b/),
  k('square_oauth_secret', 'square', /\bsq0csp-[0-9A-Za-z_-]{43}\b/),
  k('twilio_api_key', 'twilio', /\bSK[0-9a-f]{32}\b/),
  k('dynatrace_token', 'Dynatrace', /\bdt0[a-zA-Z][0-9]{2}\.[A-Z0-9]{24}\.[A-Z0-9]{64}\b/),
  k('shopify_shared_secret', 'Shopify', /\bshpss_[a-fA-F0-9]{32}\b/),
  k('shopify_access_token', 'Shopify', /\bshpat_[a-fA-F0-9]{32}\b/),
  k('shopify_custom_app_access_token', 'Shopify', /\bshpca_[a-fA-F0-9]{32}\b/),
  k('shopify_private_app_access_token', 'Shopify', /\bshppa_[a-fA-F0-9]{32}\b/),
  k('pypi_upload_token', 'pypi', /\bpypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,1000}/),
  k('npm_access_token', 'npm', /\bnpm_[A-Za-z0-9]{36}\b/),
];

/** The kinds of secret one line holds, each once. */
export function findSecrets(line: string): SecretKind[] {
  // Every kind needs at least 16 characters; most lines of code are shorter or plain words.
  if (line.length < 16) return [];
  return SECRET_KINDS.filter((s) => s.re.test(line));
}

const HUNK_RE = /^@@@? -\d+(?:,\d+)?(?: -\d+(?:,\d+)?)? \+(\d+)(?:,\d+)? @@@?/;

/**
 * Secrets on the added lines of a unified diff (the `patch` of one file as the GitHub API gives
 * it: hunks without file headers), with the line numbers of the new file.
 */
export function scanPatch(patch: string): SecretMatch[] {
  const out: SecretMatch[] = [];
  let next = 0; // the new file's line number of the next context or added line; 0 before the first hunk
  for (const line of patch.split('\n')) {
    const h = HUNK_RE.exec(line);
    if (h) {
      next = Number(h[1]);
      continue;
    }
    if (next === 0) continue;
    if (line.startsWith('-')) continue;
    if (line.startsWith('\\')) continue; // "\ No newline at end of file"
    if (line.startsWith('+')) {
      for (const s of findSecrets(line.slice(1))) out.push({ line: next, type: s.type, desc: s.desc, platform: s.platform });
    }
    next++;
  }
  return out;
}
