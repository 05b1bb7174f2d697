// The "Deliverability" panel: "Check again" (POST, then poll while the worker checks)
// and the copy buttons next to each DNS record. The body is rendered by the server
// (the endpoint's JSON carries it as `html`).
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

  window.wagtail.app.register(
    "icarus-smtp-deliverability",
    class extends window.StimulusModule.Controller {
      static targets = ["body", "button", "label", "checking", "copied", "error"];
      static values = { url: String };

      connect() {
        this.idleLabel = this.labelTarget.textContent;
        this.polls = 0;
        if (this.pending()) {
          this.buttonTarget.disabled = true;
          this.load("GET");
        }
      }

      disconnect() {
        window.clearTimeout(this.timer);
      }

      pending() {
        const state = this.bodyTarget.querySelector("[data-pending]");
        return state && state.dataset.pending === "true" && state.dataset.stale !== "true";
      }

      recheck() {
        this.polls = 0;
        this.buttonTarget.disabled = true;
        this.labelTarget.textContent = this.checkingTarget.content.textContent;
        this.load("POST");
      }

      load(method) {
        window.icarusSmtp
          .request(this.urlValue, { method })
          .then((response) => response.json())
          .then((data) => {
            this.bodyTarget.innerHTML = data.html;
            if (data.pending && !data.stale && this.polls < MAX_POLLS) {
              this.polls += 1;
              this.timer = window.setTimeout(() => this.load("GET"), POLL_MS);
            } else {
              this.buttonTarget.disabled = false;
              this.labelTarget.textContent = this.idleLabel;
            }
          })
          .catch(() => {
            this.labelTarget.textContent = this.errorTarget.content.textContent;
            this.buttonTarget.disabled = false;
          });
      }

      copy({ currentTarget: button }) {
        const original = button.textContent;
        copyText(button.dataset.icarusCopy).then(() => {
          button.textContent = this.copiedTarget.content.textContent;
          window.setTimeout(() => {
            button.textContent = original;
          }, 2000);
        });
      }
    },
  );
})();
