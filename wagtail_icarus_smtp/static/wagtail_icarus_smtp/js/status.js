// Keeps the SMTP status panel current while a connection test runs: polls the JSON
// status view and reloads the panel once the state is final.
(function () {
  "use strict";
  const POLL_MS = 1500;

  function poll(panel) {
    const url = panel.dataset.statusUrl;
    const shown = panel.dataset.status;
    fetch(url, { headers: { "X-Requested-With": "XMLHttpRequest" }, credentials: "same-origin" })
      .then((response) => (response.ok ? response.json() : Promise.reject(response.status)))
      .then((report) => {
        if (report.status !== shown || report.stale) {
          window.location.reload();
        } else if (!report.final) {
          window.setTimeout(() => poll(panel), POLL_MS);
        }
      })
      .catch(() => window.setTimeout(() => poll(panel), POLL_MS * 4));
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("[data-icarus-smtp-status]").forEach((panel) => {
      if (panel.dataset.final !== "true" && panel.dataset.stale !== "true") {
        window.setTimeout(() => poll(panel), POLL_MS);
      }
    });
  });
})();
