/* The deal timeline's forms (templates/timeline/): after an htmx swap, focus goes to the first
   field with an error, else back into the form just used; a saved or failed action is said
   aloud through the page's polite live region. No inline script (CSP). */
(function () {
  "use strict";

  document.body.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail.target;
    var id = target && target.id;
    if (id !== "timeline-add" && id !== "history") {
      return;
    }
    var region = document.getElementById(id);
    if (!region) {
      return;
    }
    var invalid = region.querySelector("[aria-invalid=true]");
    if (invalid) {
      invalid.focus();
      return;
    }
    var said = region.querySelector("[data-announce]");
    var live = document.getElementById("live-status");
    if (said && live) {
      live.textContent = said.textContent;
    }
    var source = event.detail.requestConfig && event.detail.requestConfig.elt;
    var form = source && source.id ? document.getElementById(source.id) : null;
    var first = form && form.querySelector("input:not([type=hidden]), textarea");
    if (first) {
      first.focus();
    } else if (said) {
      said.focus();
    }
  });
})();
