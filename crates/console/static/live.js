// Live SLA items on the operations page: rows from the server's event stream, written
// with textContent only (never HTML). The page is whole without this script.
"use strict";
(function () {
  var table = document.getElementById("sla-items");
  var status = document.getElementById("live-status");
  if (!table || !window.EventSource) { return; }
  var rows = document.getElementById("sla-rows");
  var source = new EventSource(table.getAttribute("data-live-url"));
  function cell(row, text, link) {
    var td = document.createElement("td");
    if (link) {
      var a = document.createElement("a");
      a.setAttribute("href", "/cases/" + encodeURIComponent(text));
      a.textContent = text;
      td.appendChild(a);
    } else {
      td.textContent = text;
    }
    row.appendChild(td);
  }
  source.addEventListener("sla", function (message) {
    var item = JSON.parse(message.data);
    var row = null;
    var existing = rows.querySelectorAll("tr");
    for (var i = 0; i < existing.length; i++) {
      if (existing[i].getAttribute("data-key") === item.key) { row = existing[i]; }
    }
    var fresh = document.createElement("tr");
    fresh.setAttribute("data-key", item.key);
    fresh.setAttribute("data-state", item.state);
    fresh.setAttribute("data-live", "1");
    cell(fresh, item.rule, false);
    cell(fresh, item.state_text, false);
    if (item["case"]) { cell(fresh, item["case"], true); } else { cell(fresh, "\u2014", false); }
    cell(fresh, item.owner, false);
    cell(fresh, item.due, false);
    if (row) { rows.replaceChild(fresh, row); } else { rows.appendChild(fresh); }
  });
  source.addEventListener("ready", function () {
    status.setAttribute("data-live", "on");
    status.textContent = "\u25cf";
  });
  source.onerror = function () {
    status.setAttribute("data-live", "off");
  };
})();
