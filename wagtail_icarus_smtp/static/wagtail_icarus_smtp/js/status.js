// The status bar and the history of the settings page, kept current while a connection
// test runs: the bar asks the server for the status fragment (the same templates the
// page was rendered with) and swaps its parts in place; the form the editor may be
// typing in is left alone. Polling stops when the state is final and pauses while the
// tab is in the background; it catches up when the tab is shown again.
(() => {
  const POLL_MS = 1500;
  const SLOW_POLL_MS = 10000;
  // The fields a failure is about point to its explanation and fix (aria-describedby),
  // so a screen reader reads cause and fix when the editor goes there to correct it.
  const FAILURE_ID = "icarus-smtp-failure";
  const FIELDS = ["email", "password", "host", "port"];

  window.wagtail.app.register(
    "icarus-smtp-status",
    class extends window.StimulusModule.Controller {
      static targets = ["part"];
      static values = { url: String, final: Boolean, stale: Boolean, affected: String };

      connect() {
        this.describeAffected();
        if (!this.finalValue) this.schedule();
      }

      disconnect() {
        window.clearTimeout(this.timer);
        document.removeEventListener("visibilitychange", this.whenShown);
      }

      schedule() {
        window.clearTimeout(this.timer);
        this.timer = window.setTimeout(() => this.poll(), this.staleValue ? SLOW_POLL_MS : POLL_MS);
      }

      poll() {
        if (document.hidden) {
          // A tab in the background asks nothing; it catches up when it is shown again.
          this.whenShown = () => this.poll();
          document.addEventListener("visibilitychange", this.whenShown, { once: true });
          return;
        }
        window.icarusSmtp
          .request(this.urlValue, { accept: "text/html" })
          .then((response) => {
            if (response.status === 403) return; // no permission (any more): stop quietly
            if (!response.ok) throw new Error(String(response.status));
            return response.text().then((html) => {
              this.update(html);
              if (!this.finalValue) this.schedule();
            });
          })
          .catch(() => {
            this.timer = window.setTimeout(() => this.poll(), SLOW_POLL_MS);
          });
      }

      update(html) {
        const template = document.createElement("template");
        template.innerHTML = html;
        const fresh = template.content.querySelector(`[data-controller~="${this.identifier}"]`);
        if (!fresh) return;
        for (const name of fresh.getAttributeNames()) {
          if (name !== "data-controller") this.element.setAttribute(name, fresh.getAttribute(name));
        }
        // The parts' contents change; the parts stay, so their live regions announce it.
        for (const part of this.partTargets) {
          const freshPart = fresh.querySelector(`[data-part="${part.dataset.part}"]`);
          if (!freshPart) continue;
          part.hidden = freshPart.hidden;
          part.replaceChildren(...freshPart.childNodes);
        }
        this.describeAffected();
        this.dispatch("updated", { detail: { fragment: template.content } });
      }

      describeAffected() {
        const affected = this.affectedValue.split(" ").filter(Boolean);
        for (const name of FIELDS) {
          const input = document.querySelector(`[name="${name}"]`);
          if (!input) continue;
          const ids = (input.getAttribute("aria-describedby") || "")
            .split(/\s+/)
            .filter((id) => id && id !== FAILURE_ID);
          if (affected.includes(name)) ids.push(FAILURE_ID);
          if (ids.length) input.setAttribute("aria-describedby", ids.join(" "));
          else input.removeAttribute("aria-describedby");
        }
      }
    },
  );

  // The last events under the form: replaced by those of the status bar's fragment.
  window.wagtail.app.register(
    "icarus-smtp-history",
    class extends window.StimulusModule.Controller {
      replace({ detail: { fragment } }) {
        const fresh = fragment.querySelector(`[data-controller~="${this.identifier}"]`);
        if (fresh) this.element.replaceChildren(...fresh.childNodes);
      }
    },
  );
})();
