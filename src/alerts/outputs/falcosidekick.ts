/**
 * Forwarding to falcosidekick, exactly as Falco's http_output feeds it: Falco's JSON POSTed to
 * `url` + "/". A central `minewatch server` takes the same request (with a bearer token), which is
 * how agents on many nodes share one alert history; the `minewatch` key carries the group's uuid
 * so a summary lands on the row its first message made.
 */
import { WebhookOutput, type WebhookOptions, sidekickUrl } from './webhook.js';

export class FalcosidekickOutput extends WebhookOutput {
  constructor(opts: WebhookOptions) {
    super({ ...opts, url: sidekickUrl(opts.url) });
  }
}
