/* The deal timeline's forms (templates/timeline/): after an htmx swap, focus goes to the first
   field with an error, else back into the form just used (or to what the action did). What was
   saved is said by the page's live region (the server's HX-Trigger, static/js/focus.js). No
   inline script (CSP). */
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
    var source = event.detail.requestConfig && event.detail.requestConfig.elt;
    var form = source && source.id ? document.getElementById(source.id) : null;
    var first = form && form.querySelector("input:not([type=hidden]), textarea");
    var said = region.querySelector("[data-saved]");
    if (first) {
      first.focus();
    } else if (said) {
      said.focus();
    }
  });
})();
