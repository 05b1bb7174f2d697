// Keeps the SMTP status panel current while a connection test runs: polls the JSON
// status view and, when the state changes, swaps in the freshly rendered panel —
// the form the editor may be typing in is left alone.
(function () {
  "use strict";
  const POLL_MS = 1500;
  const SELECTOR = "[data-icarus-smtp-status]";

  function replacePanel(panel) {
    return fetch(window.location.href, { credentials: "same-origin" })
      .then((response) => response.text())
      .then((html) => {
        const fresh = new DOMParser().parseFromString(html, "text/html").querySelector(SELECTOR);
        if (fresh) {
          panel.replaceWith(fresh);
          watch(fresh);
        }
      });
  }

  function poll(panel) {
    fetch(panel.dataset.statusUrl, {
      headers: { "X-Requested-With": "XMLHttpRequest" },
      credentials: "same-origin",
    })
      .then((response) => (response.ok ? response.json() : Promise.reject(response.status)))
      .then((report) => {
        if (report.status !== panel.dataset.status || report.stale) {
          return replacePanel(panel);
        }
        if (!report.final) {
          window.setTimeout(() => poll(panel), POLL_MS);
        }
      })
      .catch(() => window.setTimeout(() => poll(panel), POLL_MS * 4));
  }

  function watch(panel) {
    if (panel.dataset.final !== "true" && panel.dataset.stale !== "true") {
      window.setTimeout(() => poll(panel), POLL_MS);
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll(SELECTOR).forEach(watch);
  });
})();
