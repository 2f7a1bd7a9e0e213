// Placeholder until this page is built: says so, and nothing else.
import { h } from "../ui.js";

export default async function render(ctx) {
  ctx.setTitle("audit");
  ctx.main.append(h("h1", null, "audit"), h("p", null, "This page is not built yet."));
}
