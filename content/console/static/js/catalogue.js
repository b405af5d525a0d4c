// The exhibit's signal catalogue (GET /api/v1/catalogue), fetched once and shared by the views.

import { getJSON } from "./api.js";

let pending = null;

/** A Map from signal name to {name, type, meaning, owner, group}; fetched again after ``forget``. */
export function loadCatalogue() {
  if (!pending) {
    pending = getJSON("/api/v1/catalogue")
      .then((data) => new Map(data.signals.map((signal) => [signal.name, signal])))
      .catch((error) => {
        pending = null;
        throw error;
      });
  }
  return pending;
}

/** After a reconnection: the exhibit may have been reloaded with other signals. */
export function forgetCatalogue() {
  pending = null;
}
