// The "Deliverability" panel: "Check again" (POST, then poll while the worker checks)
// and the copy buttons next to each DNS record.
(() => {
  const POLL_MS = 2000;
  const MAX_POLLS = 60;

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    document.execCommand("copy");
    area.remove();
    return Promise.resolve();
  }

  function setup() {
    const box = document.querySelector("[data-icarus-deliverability]");
    if (!box) return;
    const body = box.querySelector("[data-icarus-deliverability-body]");
    const button = box.querySelector("[data-icarus-deliverability-recheck]");
    const label = button.querySelector("[data-label]");
    const idleLabel = label.textContent;
    const template = (name) =>
      box.querySelector(`template[data-icarus-deliverability-${name}]`).content.textContent;
    let polls = 0;

    function pending() {
      const state = body.querySelector("[data-pending]");
      return state && state.dataset.pending === "true" && state.dataset.stale !== "true";
    }

    function done() {
      button.disabled = false;
      label.textContent = idleLabel;
    }

    function load(method) {
      const csrf = document.querySelector('input[name="csrfmiddlewaretoken"]');
      fetch(box.dataset.url, {
        method,
        credentials: "same-origin",
        headers: {
          "X-Requested-With": "XMLHttpRequest",
          "X-CSRFToken": csrf ? csrf.value : "",
          Accept: "application/json",
        },
      })
        .then((response) => response.json())
        .then((data) => {
          body.innerHTML = data.html;
          if (data.pending && !data.stale && polls < MAX_POLLS) {
            polls += 1;
            window.setTimeout(() => load("GET"), POLL_MS);
          } else {
            done();
          }
        })
        .catch(() => {
          label.textContent = template("error");
          button.disabled = false;
        });
    }

    button.addEventListener("click", () => {
      polls = 0;
      button.disabled = true;
      label.textContent = template("checking");
      load("POST");
    });

    box.addEventListener("click", (event) => {
      const copy = event.target.closest("[data-icarus-copy]");
      if (!copy) return;
      const original = copy.textContent;
      copyText(copy.dataset.icarusCopy).then(() => {
        copy.textContent = template("copied");
        window.setTimeout(() => {
          copy.textContent = original;
        }, 2000);
      });
    });

    if (pending()) {
      button.disabled = true;
      load("GET");
    }
  }

  document.addEventListener("DOMContentLoaded", setup);
})();
