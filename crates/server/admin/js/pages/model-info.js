// The declaration of one model as the caller may use it (`GET /api/v1/models`), shared by
// the record table and the record form, and the addresses of its records in the API and in
// the console. Not a page: app.js routes to no file here.
import { ApiError } from "../api.js";

/** The model's entry of /api/v1/models; a 404 ApiError when the caller has no such model. */
export async function modelInfo(api, name) {
  const r = await api.api("GET", "/models");
  const info = (r.data || []).find((m) => m.name === name);
  if (!info) throw new ApiError(404, { code: "NOT_FOUND", message: `no model named ${name}` });
  return info;
}

/** The API path (under /api/v1) of a model's records, or of one record when `id` is given. */
export function apiPath(model, id) {
  return "/" + encodeURIComponent(model) + (id ? "/" + encodeURIComponent(id) : "");
}

/** The console address of a model's record table, or of one record's page when `id` is given. */
export function pageHash(model, id) {
  return "#/m/" + encodeURIComponent(model) + (id ? "/" + encodeURIComponent(id) : "");
}
