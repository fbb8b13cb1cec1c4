/* Live pages: an open page follows the synced store without a reload and without any upstream
   call. Every POLL_MS (2 s, paused while the tab is hidden) it asks the store's change feed
   (GET /live/changes/?since=<token>, a few indexed queries) which deals changed. Only when one
   on this page did, it reads its own page again (from the store) and swaps the parts that
   changed, in place:
   - list: the changed rows' cells (rows never move, so the keyboard cursor stays put);
   - board: the columns, totals and summary that changed;
   - detail: title, state and fields, with "Changed by someone else just now: …". A field being
     edited is never swapped: what the user typed stays, and its Save still checks for conflicts.
   Nothing that holds the focus (or an open form) is replaced; it is tried again next time.
   Changes are announced politely in #live-status (aria-live). */
(function () {
  "use strict";

  var POLL_MS = 2000;
  var region = document.getElementById("live-status"); // also says where the feed is
  var feed = region && region.dataset.liveUrl;
  if (!feed || !window.fetch || !window.DOMParser) {
    return;
  }
  var since = region.dataset.liveSince || "0";
  var timer = null;
  var busy = false;
  var stopped = false;
  var retry = false; // a part was skipped (focus, an open form): refresh again next tick
  var retries = 0;
  var MAX_RETRIES = 5; // then the skipped part waits for the next change
  var HEADERS = { "X-DealDesk-Live": "1" }; // a background read: it does not extend the session

  var started = 0; // when the last check began: checks keep a steady POLL_MS cadence

  function schedule() {
    window.clearTimeout(timer);
    if (!stopped && !document.hidden) {
      var wait = started ? POLL_MS - (Date.now() - started) : POLL_MS;
      timer = window.setTimeout(tick, Math.max(wait, 250));
    }
  }

  document.addEventListener("visibilitychange", function () {
    if (document.hidden) {
      window.clearTimeout(timer);
    } else {
      tick();
    }
  });

  function tick() {
    if (busy || stopped) {
      return;
    }
    busy = true;
    started = Date.now();
    window
      .fetch(feed + "?since=" + encodeURIComponent(since), {
        credentials: "same-origin",
        headers: HEADERS,
      })
      .then(function (response) {
        var type = response.headers.get("Content-Type") || "";
        if (response.redirected || type.indexOf("application/json") !== 0) {
          stopped = true; // signed out: the next navigation shows the login page
          return null;
        }
        return response.ok ? response.json() : null;
      })
      .then(function (changes) {
        if (!changes) {
          return null;
        }
        if (writing > 0 && Date.now() - writingSince < 30000) {
          return null; // this page's own write is on its way back: read the feed again after it
        }
        since = String(changes.token);
        var again = retry && retries < MAX_RETRIES;
        retries = again ? retries + 1 : 0;
        var news = notOwn(changes.deals, changes.latest || {});
        if (again || changes.overflow || concernsThisPage(news)) {
          return refresh(news, changes.overflow);
        }
        return null;
      })
      .catch(function () {
        /* offline or restarting: try again at the next tick */
      })
      .then(function () {
        busy = false;
        schedule();
      });
  }

  // --- this page's own writes --------------------------------------------------------------

  /* A board move answers with the columns and totals it changed (out of band), and a bulk action
     with its rows re-rendered, so neither page need read its own write back: the server names the
     changes a write made (slug:id=change), and only a newer change to that deal (someone else's)
     counts. While a write is in flight, the feed's answer waits for the next check. A deal page
     reads its own writes back as before. */
  var own = {};
  var writing = 0; // this page's own writes in flight (a lost one is forgotten after 30 s)
  var writingSince = 0;
  var writes = 0; // how many this page has started: a read-back that overlapped one is dropped
  function isWrite(event) {
    var config = event.detail && event.detail.requestConfig;
    return config && config.verb && config.verb.toLowerCase() !== "get";
  }
  document.body.addEventListener("htmx:beforeRequest", function (event) {
    if (isWrite(event)) {
      writing += 1;
      writes += 1;
      writingSince = Date.now();
    }
  });
  document.body.addEventListener("htmx:afterRequest", function (event) {
    if (isWrite(event)) {
      writing = Math.max(0, writing - 1);
    }
    var xhr = event.detail && event.detail.xhr;
    var header = xhr && event.detail.successful ? xhr.getResponseHeader("X-DealDesk-Live-Own") : "";
    var redraws = document.getElementById("board-columns") || document.getElementById("deal-table");
    if (!header || !redraws) {
      return;
    }
    header.split(",").forEach(function (pair) {
      var at = pair.lastIndexOf("=");
      if (at > 0) {
        own[pair.slice(0, at)] = Number(pair.slice(at + 1));
      }
    });
  });

  function notOwn(keys, latest) {
    return keys.filter(function (key) {
      return !(key in own && latest[key] !== undefined && latest[key] <= own[key]);
    });
  }

  // --- which page is this ------------------------------------------------------------------

  function detailKey() {
    var holder = document.querySelector("[data-live-deal]");
    return holder ? holder.getAttribute("data-live-deal") : null;
  }

  function concernsThisPage(keys) {
    if (!keys.length) {
      return false;
    }
    if (document.getElementById("board-columns")) {
      return true; // a change may move a card into this board, or out of it
    }
    var key = detailKey();
    if (key) {
      return keys.indexOf(key) !== -1;
    }
    return keys.some(function (changed) {
      return rowFor(document, changed) !== null;
    });
  }

  /* A list row's deal key sits on its name link and its Updated cell (the row itself keeps its
     plain markup); the link is always there, whichever columns are shown. */
  function rowKey(row) {
    var holder = row.querySelector("[data-deal-key]");
    return holder ? holder.getAttribute("data-deal-key") : null;
  }

  function rowFor(root, key) {
    var rows = root.querySelectorAll("tr[data-row]");
    for (var i = 0; i < rows.length; i++) {
      if (rowKey(rows[i]) === key) {
        return rows[i];
      }
    }
    return null;
  }

  /* The list and the board answer htmx with just their results (no page chrome to render);
     a deal page reads itself whole. */
  function refreshHeaders() {
    if (detailKey()) {
      return HEADERS;
    }
    if (document.getElementById("board-columns") || document.getElementById("deal-table")) {
      return { "X-DealDesk-Live": "1", "HX-Request": "true" };
    }
    return HEADERS;
  }

  function refresh(keys, everything) {
    var startedAt = writes;
    return window
      .fetch(window.location.href, { credentials: "same-origin", headers: refreshHeaders() })
      .then(function (response) {
        return response.ok && !response.redirected ? response.text() : null;
      })
      .then(function (html) {
        if (html === null) {
          return;
        }
        if (writing > 0 || writes !== startedAt) {
          retry = true; // read while this page wrote: compare again once its answer is shown
          return;
        }
        var fresh = new DOMParser().parseFromString(html, "text/html");
        retry = false;
        if (document.getElementById("board-columns")) {
          updateBoard(fresh, keys);
        } else if (detailKey()) {
          updateDetail(fresh);
        } else if (document.getElementById("deal-table")) {
          updateList(fresh, keys, everything);
        }
      });
  }

  // --- swapping ----------------------------------------------------------------------------

  function squash(text) {
    return (text || "").replace(/\s+/g, " ").trim();
  }

  /* What a part shows and submits, without the one-off idempotency keys every render makes. */
  function fingerprint(element) {
    var parts = [squash(element.textContent)];
    element.querySelectorAll("option[selected]").forEach(function (option) {
      parts.push("option=" + option.value);
    });
    element.querySelectorAll("input[type=hidden]").forEach(function (input) {
      if (input.name !== "idempotency_key" && input.name !== "csrfmiddlewaretoken") {
        parts.push(input.name + "=" + input.getAttribute("value"));
      }
    });
    element.querySelectorAll("[data-column]").forEach(function (card) {
      parts.push("column=" + card.getAttribute("data-column"));
    });
    return parts.join("|");
  }

  function holdsUser(element) {
    var active = document.activeElement;
    return (
      (active && active !== document.body && element.contains(active)) ||
      element.querySelector("[data-edit-form], .is-dragging, [data-reason]") !== null ||
      element.classList.contains("is-editing")
    );
  }

  function swap(current, replacement) {
    var imported = document.importNode(replacement, true);
    current.replaceWith(imported);
    if (window.htmx) {
      window.htmx.process(imported);
    }
    imported.classList.add("live-updated");
    return imported;
  }

  /* Make ``current`` look like ``next`` while keeping every node that can stay: same-shaped
     elements keep their identity (and so the focus), only text and attributes change. */
  function morph(current, next) {
    if (current.nodeType !== next.nodeType || current.nodeName !== next.nodeName) {
      current.replaceWith(document.importNode(next, true));
      return;
    }
    if (current.nodeType === Node.TEXT_NODE) {
      if (current.nodeValue !== next.nodeValue) {
        current.nodeValue = next.nodeValue;
      }
      return;
    }
    if (current.nodeType !== Node.ELEMENT_NODE) {
      return;
    }
    Array.prototype.slice.call(current.attributes).forEach(function (attribute) {
      if (!next.hasAttribute(attribute.name) && attribute.name !== "class") {
        current.removeAttribute(attribute.name);
      }
    });
    Array.prototype.slice.call(next.attributes).forEach(function (attribute) {
      if (current.getAttribute(attribute.name) !== attribute.value) {
        current.setAttribute(attribute.name, attribute.value);
      }
    });
    var mine = Array.prototype.slice.call(current.childNodes);
    var theirs = Array.prototype.slice.call(next.childNodes);
    for (var i = 0; i < theirs.length; i++) {
      if (i < mine.length) {
        morph(mine[i], theirs[i]);
      } else {
        current.appendChild(document.importNode(theirs[i], true));
      }
    }
    for (var j = theirs.length; j < mine.length; j++) {
      mine[j].remove();
    }
  }

  function announce(text) {
    var region = document.getElementById("live-status");
    if (region && text) {
      region.textContent = "";
      window.setTimeout(function () {
        region.textContent = text;
      }, 50);
    }
  }

  // --- list --------------------------------------------------------------------------------

  function updateList(fresh, keys, everything) {
    var names = [];
    document.querySelectorAll("tr[data-row]").forEach(function (row) {
      var key = rowKey(row);
      if (!everything && keys.indexOf(key) === -1) {
        return;
      }
      var next = rowFor(fresh, key);
      if (!next) {
        return; // no longer on this page of results: it stays until the user reloads
      }
      var changed = false;
      var cells = row.children;
      var nextCells = next.children;
      for (var i = 0; i < cells.length && i < nextCells.length; i++) {
        var cell = cells[i];
        if (fingerprint(cell) === fingerprint(nextCells[i])) {
          continue;
        }
        if (cell.querySelector("input[type=checkbox]")) {
          // keep the selection; the bulk action's expected state follows the row
          cell.querySelectorAll("input[type=hidden]").forEach(function (input) {
            var twin = nextCells[i].querySelector('input[name="' + input.name + '"]');
            if (twin) {
              input.value = twin.value;
            }
          });
          continue;
        }
        morph(cell, nextCells[i]); // in place: a focused link stays the same, focused node
        cell.classList.add("live-updated");
        changed = true;
      }
      if (changed) {
        var name = row.querySelector("td[data-label=Name] a");
        names.push(squash(name ? name.textContent : key));
      }
    });
    if (names.length) {
      announce("Updated: " + names.join(", ") + ".");
    }
  }

  // --- board -------------------------------------------------------------------------------

  function updateBoard(fresh, keys) {
    var changed = false;
    var selectors = ["#pipeline-summary", "#board-note"];
    document.querySelectorAll("#board-columns > [data-drop-column]").forEach(function (column) {
      selectors.push("#" + column.id);
    });
    selectors.forEach(function (selector) {
      var current = document.querySelector(selector);
      var next = fresh.querySelector(selector);
      if (!current || !next || fingerprint(current) === fingerprint(next)) {
        return;
      }
      if (holdsUser(current)) {
        retry = true;
        return;
      }
      swap(current, next);
      changed = true;
    });
    if (changed) {
      var names = [];
      keys.forEach(function (key) {
        var card = document.querySelector('[data-deal-key="' + cssEscape(key) + '"]');
        var column = card ? card.closest("[data-drop-column]") : null;
        var title = column ? column.querySelector("h2") : null;
        if (card) {
          names.push(squash(card.querySelector(".card-name").textContent) +
            (title ? " in " + squash(title.textContent) : ""));
        }
      });
      announce("Board updated" + (names.length ? ": " + names.join(", ") : "") + ".");
    }
  }

  function cssEscape(text) {
    return window.CSS && window.CSS.escape ? window.CSS.escape(text) : text.replace(/"/g, '\\"');
  }

  // --- detail ------------------------------------------------------------------------------

  function updateDetail(fresh) {
    var notes = [];
    var title = document.getElementById("deal-title");
    var freshTitle = fresh.getElementById("deal-title");
    if (title && freshTitle && squash(title.textContent) !== squash(freshTitle.textContent)) {
      title.textContent = freshTitle.textContent; // the heading keeps its node (and focus)
      document.title = fresh.title;
    }
    document.querySelectorAll(".field[id^='field-']").forEach(function (field) {
      var next = fresh.getElementById(field.id);
      if (!next) {
        return;
      }
      var label = squash((next.querySelector("dt") || field.querySelector("dt") || {}).textContent);
      var value = next.querySelector(".field-value");
      var shown = squash(value ? value.textContent : "");
      if (field.classList.contains("is-editing")) {
        var original = field.querySelector("input[name=original]");
        if (original && squash(original.value) !== shown && !field.dataset.liveNoted) {
          field.dataset.liveNoted = shown;
          notes.push(label + " is now '" + shown + "' (your edit is kept; Save checks it)");
        }
        return;
      }
      var mine = field.querySelector(".field-value");
      if (mine && squash(mine.textContent) === shown) {
        return; // the same value (this user's own save, say): nothing to say or swap
      }
      if (holdsUser(field)) {
        retry = true;
        return;
      }
      var unknownBefore = mine && mine.querySelector("[data-not-synced]") !== null;
      swap(field, next);
      if (!unknownBefore) {
        notes.push(label + " is now '" + shown + "'"); // a value first read is no news
      }
    });
    ["deal-state", "deal-facts", "history", "timeline-next-step"].forEach(function (id) {
      var current = document.getElementById(id);
      var next = fresh.getElementById(id);
      if (!current || !next || fingerprint(current) === fingerprint(next)) {
        return;
      }
      if (holdsUser(current)) {
        retry = true;
        return;
      }
      var badge = current.querySelector("#status-badge");
      var freshBadge = next.querySelector("#status-badge");
      var before = squash(badge ? badge.textContent : "");
      var after = squash(freshBadge ? freshBadge.textContent : "");
      swap(current, next);
      if (id === "deal-state" && before !== after) {
        notes.push("Status is now '" + after + "'");
      }
    });
    if (notes.length) {
      showNotice("Changed by someone else just now: " + notes.join("; ") + ".");
    }
  }

  function showNotice(text) {
    var notice = document.getElementById("live-notice");
    if (!notice) {
      notice = document.createElement("p");
      notice.id = "live-notice";
      notice.className = "alert alert-info live-notice";
      var head = document.querySelector(".deal-head") || document.getElementById("main");
      head.appendChild(notice);
    }
    notice.textContent = text;
    announce(text);
  }

  schedule();
})();
