// Placeholder until this page is built: says so, and nothing else.
import { h } from "../ui.js";

export default async function render(ctx) {
  ctx.setTitle("records");
  ctx.main.append(h("h1", null, "records"), h("p", null, "This page is not built yet."));
}
