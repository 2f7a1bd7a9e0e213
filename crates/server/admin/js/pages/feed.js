// A model's change feed for a page (records.js): EventSource with a ticket, since it
// cannot send an Authorization header. Not a page: app.js routes to no file here.
import { apiPath } from "./model-info.js";

/**
 * Wait before reconnecting a dropped change feed, doubled on each failure up to the
 * ceiling and back to the first once the stream is live, so a server that refuses (a
 * revoked session, too many streams) is not asked again every second for as long as the
 * page stays open.
 */
const RETRY_MS = 1500;
const RETRY_MAX_MS = 30000;

/**
 * Follows the model's change feed: a ticket per connection, `after=` the last position on
 * a reconnect. `onEvent(type, record)` for each change; `onState(text)` for the live badge.
 * Answers a function that stops it for good.
 */
export function follow(ctx, model, filterPairs, onEvent, onState, onReset) {
  let source = null;
  let last = null;
  let stopped = false;
  let timer = null;
  let wait = RETRY_MS;
  const again = () => {
    if (source) source.close();
    source = null;
    if (stopped) return;
    onState("reconnecting");
    timer = setTimeout(open, wait);
    wait = Math.min(wait * 2, RETRY_MAX_MS);
  };
  async function open() {
    if (stopped) return;
    let t;
    try {
      t = await ctx.api.ticket();
    } catch (_) {
      return again();
    }
    if (stopped) return;
    const params = new URLSearchParams(filterPairs);
    params.set("ticket", t);
    if (last !== null) params.set("after", last);
    source = new EventSource(`/api/v1${apiPath(model)}/events?${params}`);
    for (const type of ["created", "updated", "deleted", "restored", "purged"]) {
      source.addEventListener(type, (e) => {
        last = e.lastEventId || last;
        try {
          onEvent(type, JSON.parse(e.data).record);
        } catch (_) {
          // a malformed event changes nothing shown
        }
      });
    }
    source.addEventListener("ready", (e) => {
      last = e.lastEventId || last;
      wait = RETRY_MS;
      onState("live");
    });
    source.addEventListener("reset", (e) => {
      last = e.lastEventId || last;
      onReset();
    });
    source.addEventListener("end", (e) => {
      last = e.lastEventId || last;
      again();
    });
    source.onerror = again;
  }
  open();
  return () => {
    stopped = true;
    clearTimeout(timer);
    if (source) source.close();
  };
}
