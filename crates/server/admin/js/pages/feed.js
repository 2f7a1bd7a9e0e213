// A model's change feed for a page (records.js): EventSource with a ticket, since it
// cannot send an Authorization header. Not a page: app.js routes to no file here.
import { apiPath } from "./model-info.js";

/** Wait before reconnecting a dropped change feed, so a refusing server is not hammered. */
const RETRY_MS = 1500;

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
  const again = () => {
    if (source) source.close();
    source = null;
    if (stopped) return;
    onState("reconnecting");
    timer = setTimeout(open, RETRY_MS);
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
