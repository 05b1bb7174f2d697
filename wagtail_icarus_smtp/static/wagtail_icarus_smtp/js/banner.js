// On every admin page: while no mail goes out (sending off, nothing live, failing) or an
// alert is active, a warning in Wagtail's own message area, added through its
// `w-messages` controller. The banner view answers 403 to users without the permission
// and 204 when there is nothing to say; then nothing is shown.
window.wagtail.app.register(
  "icarus-smtp-banner",
  class extends window.StimulusModule.Controller {
    static values = { url: String };

    connect() {
      // Only on pages with the admin sidebar (not on the login page); the settings page
      // says it in its own status bar and switch.
      if (!document.querySelector("[data-wagtail-sidebar]")) return;
      if (document.querySelector("[data-icarus-smtp-status]")) return;
      window.icarusSmtp
        .request(this.urlValue)
        .then((response) => (response.status === 200 ? response.json() : null))
        .then((banner) => banner && this.show(banner))
        .catch(() => {});
    }

    show({ text, link_text: linkText, url }) {
      const container = document.querySelector('.messages [data-w-messages-target="container"]');
      if (!container || container.querySelector("[data-icarus-smtp-banner]")) return;
      this.dispatch("add", {
        prefix: "w-messages",
        target: document,
        detail: { type: "warning", text: `${text} ` },
      });
      // w-messages appends the message while the event is dispatched: add its button
      // the way Wagtail's messages.button() renders one.
      const item = container.lastElementChild;
      if (!item) return;
      item.dataset.icarusSmtpBanner = "";
      const buttons = document.createElement("span");
      buttons.className = "buttons";
      const link = document.createElement("a");
      link.className = "button button-small button-secondary";
      link.href = url;
      link.textContent = linkText;
      buttons.append(link);
      item.lastElementChild.append(buttons);
    }
  },
);
