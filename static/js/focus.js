/* Focus and announcements after each swap, so keyboard and screen-reader users keep their place.
   - The one polite live region (#live-status in base.html) says what the server put in the
     response's HX-Trigger "dealdesk:announce" (e.g. "12 deals found", "Stage changed to …").
   - After a sort, page or filter the focus goes to the results count (not while typing a search);
     after a bulk action to its result, which is scrolled into view, and the rows are re-read so
     they show the new stages and the selection clears; an element with data-focus-after="#id"
     sends the focus to #id once its swap settled (the board's lost-prompt Cancel).
   - The bulk bar shows only while rows are selected ("N selected"); on a phone the filters sit
     behind a Filters button; a deal's renamed title becomes the document's title. */
(function () {
  "use strict";

  document.documentElement.classList.add("js");

  var quietRefresh = false; // the rows re-read after a bulk action: keep its focus and words

  function announce(text) {
    var region = document.getElementById("live-status");
    if (!region || !text) {
      return;
    }
    // Cleared first, so the same words said twice are read twice.
    region.textContent = "";
    window.setTimeout(function () {
      region.textContent = text;
    }, 50);
  }
  window.DealDesk = window.DealDesk || {};
  window.DealDesk.announce = announce;

  document.body.addEventListener("dealdesk:announce", function (event) {
    if (!quietRefresh) {
      announce(event.detail && event.detail.text);
    }
  });

  function focusOn(element) {
    if (!element) {
      return;
    }
    if (!element.hasAttribute("tabindex") && !/^(A|BUTTON|INPUT|SELECT|TEXTAREA)$/.test(element.tagName)) {
      element.setAttribute("tabindex", "-1");
    }
    element.focus({ preventScroll: true });
    element.scrollIntoView({ block: "nearest" });
  }

  // --- where the focus goes after a swap -----------------------------------------------------

  var focusAfter = null;
  document.body.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    var selector = elt && elt.getAttribute && elt.getAttribute("data-focus-after");
    if (selector) {
      focusAfter = selector;
    }
  });

  // htmx fires afterSettle on each element it settled (the new content and every out-of-band
  // part), so the element itself, not the request's target, says what was swapped.
  document.body.addEventListener("htmx:afterSettle", function (event) {
    var id = event.target && event.target.id;
    if (focusAfter) {
      var wanted = document.querySelector(focusAfter);
      focusAfter = null;
      if (wanted) {
        focusOn(wanted);
        return;
      }
    }
    if (id === "deal-table") {
      settleList();
    } else if (id === "bulk-results") {
      settleBulk();
    }
    updateBulkBar();
    followTitle();
  });

  function settleList() {
    if (quietRefresh) {
      quietRefresh = false;
      return;
    }
    var active = document.activeElement;
    // Typing a search: the results change under the box, the focus stays in it. Focus the user
    // has since moved elsewhere (into the rows, a menu) stays where they put it.
    var lost = !active || active === document.body || !document.body.contains(active);
    var filters = document.getElementById("deal-filters");
    var inFilters = filters && filters.contains(active) && active.id !== "filter-q";
    if (lost || inFilters) {
      focusOn(document.getElementById("result-count"));
    }
  }

  function settleBulk() {
    var outcome = document.querySelector("#bulk-results [data-bulk-outcome]");
    if (!outcome) {
      return;
    }
    focusOn(outcome);
    outcome.scrollIntoView({ block: "start" });
    if (outcome.getAttribute("role") === "alert") {
      return; // refused: nothing changed, the ticked rows stay for another try
    }
    // The rows re-read from the store: new stages shown, selection cleared.
    if (window.htmx && document.getElementById("deal-table")) {
      quietRefresh = true;
      window.htmx.ajax("GET", window.location.pathname + window.location.search, {
        target: "#deal-table",
        select: "#deal-table", // only the rows: what else the results carry stays as it is
        swap: "outerHTML",
      });
    }
  }

  // A search runs as it is typed; the change event its box fires on leaving would read the same
  // results again (and move the focus), so it does not reach the filter form's htmx trigger.
  document.addEventListener("change", function (event) {
    if (event.target.id === "filter-q") {
      event.stopPropagation();
    }
  }, true);

  // --- the bulk bar: only while rows are selected ---------------------------------------------

  function updateBulkBar() {
    var bar = document.getElementById("bulk-form");
    if (!bar) {
      return;
    }
    var count = document.querySelectorAll("input[name=deal][form=bulk-form]:checked").length;
    bar.classList.toggle("has-selection", count > 0);
    var words = bar.querySelector("[data-bulk-count]");
    if (words) {
      words.textContent = count ? count + " selected" : "Select deals to act on them.";
    }
  }

  document.addEventListener("change", function (event) {
    if (event.target.matches && event.target.matches("input[name=deal][form=bulk-form]")) {
      updateBulkBar();
    }
  });

  // --- phone: the filters behind a Filters button ------------------------------------------------

  document.addEventListener("click", function (event) {
    var toggle = event.target.closest && event.target.closest("[data-filters-toggle]");
    if (!toggle) {
      return;
    }
    var filters = document.getElementById(toggle.getAttribute("aria-controls"));
    var open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
    if (filters) {
      filters.classList.toggle("is-open", open);
      if (open) {
        var first = filters.querySelector("input, select");
        if (first) {
          first.focus();
        }
      }
    }
  });

  // --- a menu (<details data-menu>) closes on Escape and on a click elsewhere ---------------------

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape" || event.defaultPrevented) {
      return;
    }
    var menu = event.target.closest && event.target.closest("details[data-menu][open]");
    if (menu) {
      event.preventDefault();
      menu.open = false;
      menu.querySelector("summary").focus();
    }
  });

  document.addEventListener("click", function (event) {
    document.querySelectorAll("details[data-menu][open]").forEach(function (menu) {
      if (!menu.contains(event.target)) {
        menu.open = false;
      }
    });
  });

  // --- the deal page's title follows renames ------------------------------------------------

  function followTitle() {
    var title = document.getElementById("deal-title");
    if (title) {
      var name = title.textContent.trim();
      var wanted = name + " · DealDesk";
      if (name && document.title !== wanted) {
        document.title = wanted;
      }
    }
  }

  var head = document.querySelector(".deal-head");
  if (head && window.MutationObserver) {
    new MutationObserver(followTitle).observe(head, { childList: true, subtree: true, characterData: true });
  }

  function start() {
    var toggle = document.querySelector("[data-filters-toggle]");
    if (toggle) {
      toggle.hidden = false;
    }
    updateBulkBar();
  }
  start();
})();
