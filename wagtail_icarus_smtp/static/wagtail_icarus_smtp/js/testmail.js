// The test e-mail on the settings page: posts the recipient and shows the result the
// server rendered (its JSON carries it as `html`). While a connection test runs, the
// status fragment says when a test e-mail can be sent.
window.wagtail.app.register(
  "icarus-smtp-testmail",
  class extends window.StimulusModule.Controller {
    static targets = ["to", "send", "label", "result", "unavailable", "sending", "error"];
    static values = { url: String };

    send() {
      const body = new FormData();
      body.append("to", this.toTarget.value.trim());
      const idleLabel = this.labelTarget.textContent;
      this.sendTarget.disabled = true;
      this.labelTarget.textContent = this.sendingTarget.content.textContent;
      window.icarusSmtp
        .request(this.urlValue, { method: "POST", body })
        .then((response) => response.json())
        .then((outcome) => this.show(outcome.html))
        .catch(() => this.show(this.errorTarget.innerHTML))
        .finally(() => {
          this.sendTarget.disabled = false;
          this.labelTarget.textContent = idleLabel;
        });
    }

    show(html) {
      this.resultTarget.innerHTML = html;
      this.resultTarget.hidden = false;
      // Keyboard and screen-reader users land on the result, not back on the button.
      this.resultTarget.focus();
    }

    // The server decides which configuration a test e-mail goes through; once there is
    // one, the form is ready.
    refresh({ detail: { fragment } }) {
      const state = fragment.querySelector("[data-icarus-smtp-testmail-available]");
      if (!state || state.dataset.icarusSmtpTestmailAvailable !== "true") return;
      this.unavailableTarget.hidden = true;
      this.toTarget.disabled = false;
      this.sendTarget.disabled = false;
    }
  },
);
