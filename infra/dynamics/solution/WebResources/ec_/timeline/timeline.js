/*
 * Engagement timeline of one contact or lead: what the person did with the account's emails,
 * pages and forms, from the connector's GET {api}/timeline (the record is read as the signed-in
 * user, so the user's CRM rights decide what is shown).
 *
 * The ribbon command (ec_/programs/command.js, ec.timeline.openFromForm) opens this page with
 * navigateTo `data`: URL-encoded JSON {entity, id}. The connector's settings are the Automation
 * Programs dialog's (window.ecConnectorConfig from ec_/programs/config.js or the hosting page):
 * apiBaseUrl, and either getToken(loginHint) or clientId/authority/scope for MSAL.js (the SPA
 * registration must also list this page as a redirect URI, or set redirectUri).
 * Plain ES2017; every file comes from the solution, nothing from another network.
 */
/* global msal */
"use strict";

(function () {
    const KINDS = [
        { kind: "send", label: "Sent", legend: "Sends" },
        { kind: "open", label: "Opened", legend: "Opens" },
        { kind: "click", label: "Clicked", legend: "Clicks" },
        { kind: "page_view", label: "Visited a page", legend: "Page visits" },
        { kind: "form_response", label: "Answered a form", legend: "Form responses" }
    ];
    const LABELS = KINDS.reduce((all, k) => Object.assign(all, { [k.kind]: k }), {});
    const COUNTS = ["sends", "opens", "clicks", "pageViews", "formResponses"];
    const DAY_MS = 86400000;
    const WEEKLY_AFTER_DAYS = 62;  // beyond two months a bar a day is too thin to read

    const $ = (id) => document.getElementById(id);
    const view = { config: {}, record: null, filter: "all", events: [], continuation: null };
    let msalReady = null;

    // --- where the page runs -----------------------------------------------------------------
    function parentWindow() {
        try {
            return window.parent !== window && window.parent.document ? window.parent : null;
        } catch (error) {
            return null;  // Dynamics' own origin: nothing of the host's is reachable
        }
    }

    function settings() {
        const host = parentWindow();
        return window.ecConnectorConfig || (host && host.ecConnectorConfig) || {};
    }

    function userName() {
        const host = parentWindow();
        const api = (host && host.Xrm) || window.Xrm;
        try {
            return api.Utility.getGlobalContext().userSettings.userName || "";
        } catch (error) {
            return "";
        }
    }

    /* `data` may arrive encoded once more by Dynamics: decode until it parses. */
    function record() {
        const params = new URLSearchParams(window.location.search);
        let text = params.get("data") || params.get("Data") || "";
        for (let round = 0; round < 3; round += 1) {
            try {
                const parsed = JSON.parse(text);
                const id = String(parsed.id || "").replace(/[{}]/g, "").toLowerCase();
                return (parsed.entity === "contact" || parsed.entity === "lead") && id ?
                    { entity: parsed.entity, id: id } : null;
            } catch (error) {
                const next = decodeURIComponent(text);
                if (next === text) {
                    return null;
                }
                text = next;
            }
        }
        return null;
    }

    // --- the user's token --------------------------------------------------------------------
    async function msalToken() {
        const config = view.config;
        if (!msalReady) {
            msalReady = (typeof msal !== "undefined" ? Promise.resolve() : new Promise((ok, fail) => {
                const script = document.createElement("script");
                script.src = config.msalScript || "../programs/msal_browser.min.js";
                script.onload = ok;
                script.onerror = () => fail(new Error("MSAL.js is missing from the solution."));
                document.head.appendChild(script);
            })).then(() => msal.PublicClientApplication.createPublicClientApplication({
                auth: { clientId: config.clientId, authority: config.authority,
                    redirectUri: config.redirectUri || window.location.origin + window.location.pathname },
                cache: { cacheLocation: "sessionStorage" }
            }));
        }
        const app = await msalReady;
        const hint = userName();
        return (await app.ssoSilent({ scopes: [config.scope], loginHint: hint || undefined }))
            .accessToken;
    }

    function userToken() {
        const config = view.config;
        if (typeof config.getToken === "function") {
            return Promise.resolve(config.getToken(userName()));
        }
        if (config.clientId && config.scope) {
            return msalToken();
        }
        return Promise.reject(new Error("The page has no sign-in settings. Ask your CRM administrator for help."));
    }

    /* One page of the timeline; rejects with a message fit to show. */
    async function fetchPage(continuation) {
        let bearer;
        try {
            bearer = await userToken();
        } catch (error) {
            throw new Error("You could not be signed in to the connector. " + (error.message || ""));
        }
        const query = new URLSearchParams({ entity: view.record.entity, id: view.record.id,
            filter: view.filter });
        if (continuation) {
            query.set("continuation", continuation);
        }
        const base = String(view.config.apiBaseUrl || "").replace(/\/+$/, "");
        let response;
        try {
            response = await fetch(base + "/timeline?" + query.toString(), {
                headers: { "Authorization": "Bearer " + bearer }, credentials: "omit" });
        } catch (error) {
            throw new Error("The connector could not be reached. Try again shortly.");
        }
        const body = await response.json().catch(() => null);
        if (!response.ok) {
            // The API's own words (a 403 says the record may not be read); never internals.
            throw new Error(body && body.error ? body.error : "The connector answered HTTP " + response.status + ".");
        }
        return body;
    }

    // --- formatting --------------------------------------------------------------------------
    function when(iso, withTime) {
        if (!iso) {
            return "\u2013";
        }
        const options = withTime ?
            { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" } :
            { year: "numeric", month: "short", day: "numeric" };
        return new Date(iso).toLocaleString(undefined, options);
    }

    function node(tag, className, text) {
        const made = document.createElement(tag);
        if (className) {
            made.className = className;
        }
        if (text !== undefined) {
            made.textContent = text;
        }
        return made;
    }

    // --- summary -----------------------------------------------------------------------------
    function showSummary(page) {
        $("person-name").textContent = page.name || "(no name)";
        $("person-email").textContent = page.email || "No email address";
        const summary = page.summary || {};
        COUNTS.forEach((name) => {
            $("count-" + name).textContent = String(summary[name] || 0);
        });
        const first = $("first-at");
        const last = $("last-at");
        first.textContent = when(summary.first, true);
        last.textContent = when(summary.last, true);
        first.dataset.at = summary.first || "";
        last.dataset.at = summary.last || "";
    }

    // --- the chart: events per day (or week), stacked by kind ----------------------------------
    function bucketStart(iso, weekly) {
        const day = Date.parse(iso.slice(0, 10) + "T00:00:00Z");
        if (!weekly) {
            return day;
        }
        const weekday = (new Date(day).getUTCDay() + 6) % 7;  // weeks start on Monday
        return day - weekday * DAY_MS;
    }

    function drawChart() {
        const events = view.events;
        const figure = $("chart");
        const canvas = $("chart-canvas");
        canvas.textContent = "";
        figure.hidden = events.length === 0;
        if (!events.length) {
            return;
        }
        const times = events.map((e) => Date.parse(e.at));
        const weekly = (Math.max(...times) - Math.min(...times)) / DAY_MS > WEEKLY_AFTER_DAYS;
        const step = weekly ? 7 * DAY_MS : DAY_MS;
        const buckets = new Map();
        events.forEach((e) => {
            const key = bucketStart(e.at, weekly);
            const counts = buckets.get(key) || {};
            counts[e.kind] = (counts[e.kind] || 0) + 1;
            buckets.set(key, counts);
        });
        const keys = Array.from(buckets.keys());
        const from = Math.min(...keys);
        const slots = Math.round((Math.max(...keys) - from) / step) + 1;
        const tallest = Math.max(...Array.from(buckets.values()).map(
            (c) => Object.values(c).reduce((a, b) => a + b, 0)));
        const width = Math.max(320, slots * 18 + 40);
        const height = 150;
        const plot = { left: 30, top: 10, bottom: 125 };
        const slot = (width - plot.left - 10) / slots;
        const svgNs = "http://www.w3.org/2000/svg";
        const svg = document.createElementNS(svgNs, "svg");
        svg.setAttribute("viewBox", "0 0 " + width + " " + height);
        svg.setAttribute("role", "img");
        svg.setAttribute("aria-labelledby", "chart-caption");
        svg.setAttribute("data-unit", weekly ? "week" : "day");
        const shape = (tag, attributes) => {
            const made = document.createElementNS(svgNs, tag);
            Object.keys(attributes).forEach((name) => made.setAttribute(name, attributes[name]));
            svg.appendChild(made);
            return made;
        };
        shape("line", { "class": "axis", x1: plot.left, y1: plot.bottom, x2: width - 5, y2: plot.bottom });
        shape("line", { "class": "axis", x1: plot.left, y1: plot.top, x2: plot.left, y2: plot.bottom });
        shape("text", { x: plot.left - 4, y: plot.top + 8, "text-anchor": "end" }).textContent = String(tallest);
        shape("text", { x: plot.left - 4, y: plot.bottom, "text-anchor": "end" }).textContent = "0";
        const scale = (plot.bottom - plot.top) / tallest;
        buckets.forEach((counts, key) => {
            const index = Math.round((key - from) / step);
            const label = new Date(key).toISOString().slice(0, 10);
            let top = plot.bottom;
            KINDS.forEach((k) => {
                const count = counts[k.kind] || 0;
                if (!count) {
                    return;
                }
                const barHeight = count * scale;
                top -= barHeight;
                const bar = shape("rect", { "class": "bar kind-" + k.kind, x: (plot.left + index * slot + slot * 0.15).toFixed(1),
                    y: top.toFixed(1), width: Math.max(2, slot * 0.7).toFixed(1), height: barHeight.toFixed(1),
                    "data-bucket": label, "data-kind": k.kind, "data-count": count });
                const title = document.createElementNS(svgNs, "title");
                title.textContent = (weekly ? "Week of " : "") + label + ": " + count + " " + k.legend.toLowerCase();
                bar.appendChild(title);
            });
        });
        const firstLabel = new Date(from).toISOString().slice(0, 10);
        const lastLabel = new Date(from + (slots - 1) * step).toISOString().slice(0, 10);
        shape("text", { x: plot.left, y: height - 8 }).textContent = firstLabel;
        shape("text", { x: width - 5, y: height - 8, "text-anchor": "end" }).textContent = lastLabel;
        canvas.appendChild(svg);
        $("chart-caption").textContent = events.length + " events " + (weekly ? "per week" : "per day") +
            " from " + firstLabel + " to " + lastLabel + (view.continuation ? " (loaded so far)" : "") + ".";
    }

    function drawLegend() {
        const legend = $("legend");
        legend.textContent = "";
        KINDS.forEach((k) => {
            const item = node("li");
            item.appendChild(node("span", "swatch kind-" + k.kind));
            item.appendChild(document.createTextNode(k.legend));
            legend.appendChild(item);
        });
    }

    // --- the list ----------------------------------------------------------------------------
    function detailRows(event) {
        const details = event.details || {};
        const rows = [];
        if (event.kind === "click" && details.url) {
            rows.push(["Clicked link", details.url]);
        } else if (event.kind === "page_view" && details.url) {
            rows.push(["Page visited", details.url]);
        }
        if (Array.isArray(details.answers)) {
            details.answers.forEach((a) => rows.push([String(a.question || "Question"), String(a.answer === undefined ? "" : a.answer)]));
        }
        Object.keys(details).forEach((name) => {
            if (name !== "url" && name !== "answers" && name !== "response_id") {
                rows.push([name.replace(/_/g, " "), typeof details[name] === "string" ? details[name] : JSON.stringify(details[name])]);
            }
        });
        rows.push([event.kind === "form_response" ? "Form" : event.kind === "page_view" ? "Source" : "Campaign",
            event.title + " (" + event.sourceId + ")"]);
        rows.push(["When", when(event.at, true)]);
        return rows;
    }

    function eventItem(event) {
        const item = node("li", "event");
        item.dataset.kind = event.kind;
        item.dataset.id = event.id;
        const toggle = node("button", "toggle");
        toggle.type = "button";
        toggle.setAttribute("aria-expanded", "false");
        toggle.setAttribute("aria-controls", "details-" + event.id);
        const kind = node("span", "kind");
        kind.appendChild(node("span", "swatch kind-" + event.kind));
        kind.appendChild(document.createTextNode((LABELS[event.kind] || { label: event.kind }).label));
        const time = node("time", "", when(event.at, true));
        time.dateTime = event.at;
        toggle.appendChild(kind);
        toggle.appendChild(node("span", "title", event.title));
        toggle.appendChild(time);
        const details = node("div", "details");
        details.id = "details-" + event.id;
        details.hidden = true;
        toggle.addEventListener("click", () => {
            const open = toggle.getAttribute("aria-expanded") !== "true";
            toggle.setAttribute("aria-expanded", String(open));
            if (open && !details.firstChild) {
                const list = node("dl");
                detailRows(event).forEach((pair) => {
                    list.appendChild(node("dt", "", pair[0]));
                    list.appendChild(node("dd", "", pair[1]));
                });
                details.appendChild(list);
            }
            details.hidden = !open;
        });
        item.appendChild(toggle);
        item.appendChild(details);
        return item;
    }

    // --- states ------------------------------------------------------------------------------
    function busy(on, text) {
        $("timeline").setAttribute("aria-busy", on ? "true" : "false");
        $("more").disabled = on;
        document.querySelectorAll("#filter input").forEach((input) => { input.disabled = on; });
        $("status").textContent = text || "";
    }

    function fail(message) {
        const box = $("error");
        box.textContent = message;
        box.hidden = false;
        busy(false, "");
        document.body.dataset.state = "error";
    }

    function render(page, appended) {
        if (!appended) {
            view.events = [];
            $("events").textContent = "";
            showSummary(page);
        }
        view.events = view.events.concat(page.events);
        view.continuation = page.continuation;
        page.events.forEach((event) => $("events").appendChild(eventItem(event)));
        $("more").hidden = !page.continuation;
        const empty = view.events.length === 0;
        const emptyState = $("empty-state");
        emptyState.hidden = !empty;
        if (empty && page.message) {
            emptyState.textContent = page.message;
        } else if (empty) {
            emptyState.textContent = view.filter === "emails" ?
                "No emails recorded for this person yet." : "No engagement recorded for this person yet.";
        }
        drawChart();
        busy(false, empty ? "" : view.events.length + (view.events.length === 1 ? " event" : " events") + " shown.");
        document.body.dataset.state = empty ? "empty" : "ready";
    }

    async function load(appended) {
        $("error").hidden = true;
        busy(true, appended ? "Loading more\u2026" : "Loading engagement\u2026");
        document.body.dataset.state = "loading";
        try {
            render(await fetchPage(appended ? view.continuation : null), appended);
        } catch (error) {
            fail(error.message || String(error));
        }
    }

    function start() {
        view.config = settings();
        view.record = record();
        drawLegend();
        document.querySelectorAll("#filter input").forEach((input) => {
            input.addEventListener("change", () => {
                if (input.checked) {
                    view.filter = input.value;
                    load(false);
                }
            });
        });
        $("more").addEventListener("click", () => load(true));
        if (!view.record) {
            fail("The page was opened without a contact or lead. Open it from a saved record.");
            return;
        }
        load(false);
    }

    start();
}());
