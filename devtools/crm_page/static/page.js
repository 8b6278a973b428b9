/* The stand-in's form and grid, and the ribbon button wired as the solution's ribbon does. */
"use strict";

(function () {
    var params = new URLSearchParams(window.location.search);
    var entity = params.get("entity") || "contact";
    var view = params.get("view") || "form";
    var content = document.getElementById("content");
    var refreshes = 0;

    function el(tag, text) {
        var node = document.createElement(tag);
        if (text !== undefined) {
            node.textContent = text;
        }
        return node;
    }

    function renderForm(context) {
        var id = params.get("id");
        var found = window.crmStandIn.record(entity, id) || { id: id, name: "(unknown)", email: null };
        content.textContent = "";
        var card = el("section");
        card.className = "card";
        card.id = "record-form";
        card.dataset.recordId = found.id;
        card.appendChild(el("h1", found.name));
        var list = el("dl");
        [["Table", entity], ["Email", found.email || "\u2014"], ["Id", found.id]].forEach(function (pair) {
            list.appendChild(el("dt", pair[0]));
            list.appendChild(el("dd", pair[1]));
        });
        card.appendChild(list);
        var note = el("p", refreshes ? "Form refreshed " + refreshes + " time(s)." : "");
        note.className = "refreshed";
        note.id = "refreshed";
        card.appendChild(note);
        content.appendChild(card);
        var formContext = {
            data: {
                entity: {
                    getId: function () { return "{" + found.id.toUpperCase() + "}"; },
                    getEntityName: function () { return entity; }
                },
                refresh: function () { refreshes += 1; renderForm(context); return Promise.resolve(); }
            }
        };
        document.getElementById("ribbon-programs").onclick = function () {
            window.ec.programs.openFromForm(formContext);
        };
        // The timeline button is on forms only, as in the solution's ribbon.
        var timelineButton = document.getElementById("ribbon-timeline");
        timelineButton.hidden = false;
        timelineButton.onclick = function () {
            window.ec.timeline.openFromForm(formContext);
        };
    }

    function renderGrid(context) {
        var rows = context.records.filter(function (r) { return r.entity === entity; });
        content.textContent = "";
        var table = el("table");
        table.className = "grid";
        table.id = "record-grid";
        var caption = el("caption", "Active " + entity + "s");
        table.appendChild(caption);
        var head = el("tr");
        ["Select", "Name", "Email"].forEach(function (h) {
            var th = el("th", h);
            th.scope = "col";
            head.appendChild(th);
        });
        table.appendChild(head);
        rows.forEach(function (r) {
            var tr = el("tr");
            var cell = el("td");
            var box = el("input");
            box.type = "checkbox";
            box.value = r.id;
            box.setAttribute("aria-label", "Select " + r.name);
            cell.appendChild(box);
            tr.appendChild(cell);
            tr.appendChild(el("td", r.name));
            tr.appendChild(el("td", r.email || "\u2014"));
            table.appendChild(tr);
        });
        content.appendChild(table);
        var note = el("p", refreshes ? "Grid refreshed " + refreshes + " time(s)." : "");
        note.className = "refreshed";
        note.id = "refreshed";
        content.appendChild(note);
        var grid = { refresh: function () { refreshes += 1; note.textContent = "Grid refreshed " + refreshes + " time(s)."; } };
        document.getElementById("ribbon-programs").onclick = function () {
            var selected = Array.from(table.querySelectorAll("input:checked")).map(function (b) {
                return "{" + b.value.toUpperCase() + "}";
            });
            window.ec.programs.openFromGrid(selected, grid, entity);
        };
    }

    window.crmStandIn.ready.then(function (context) {
        if (view === "grid") {
            renderGrid(context);
        } else {
            renderForm(context);
        }
        document.body.dataset.ready = "true";
    });
}());
