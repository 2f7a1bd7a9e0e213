// Placeholder until this page is built: says so, and nothing else.
import { h } from "../ui.js";

export default async function render(ctx) {
  ctx.setTitle("users");
  ctx.main.append(h("h1", null, "users"), h("p", null, "This page is not built yet."));
}
