/*
 * Automation Programs dialog: lists the email account's programs and enrols the records the
 * ribbon command passed (navigateTo `data`: URL-encoded JSON {entity, ids}) through the
 * connector's HTTP API (GET {api}/programs, POST {api}/enrolments), with the signed-in user's
 * Entra token for that API.
 *
 * Settings come from `window.ecConnectorConfig`, set by config.js beside this page or by the
 * hosting page (window.parent, same origin), else from the query string:
 *   apiBaseUrl  the connector's API, e.g. "https://<function app>.azurewebsites.net/api"
 *   getToken    function(loginHint) -> Promise<string>: a token source of the host's own; or
 *   clientId, authority, scope   MSAL.js (single-page app registration; the scope is the
 *               connector API's, e.g. "api://connector/user_impersonation"); msalScript: where
 *               msal_browser.min.js is (default: beside this page); redirectUri (default: this
 *               page, without its query).
 *   closeDelayMs  how long the "all enrolled" message shows before the dialog closes (1000).
 *
 * In Dynamics, ec_/programs/config.js sets, for example:
 *   window.ecConnectorConfig = { apiBaseUrl: "https://<app>.azurewebsites.net/api",
 *     clientId: "<SPA app registration>", authority: "https://login.microsoftonline.com/<tenant>",
 *     scope: "api://connector/user_impersonation" };
 * and ec_/programs/msal_browser.min.js is @azure/msal-browser's lib/msal-browser.min.js. The SPA
 * registration lists this page's URL as a redirect URI and is allowed the API's scope; the Function
 * App's CORS names the organisation's origin. The token is got silently with the CRM user's
 * name as login hint; when that fails a Sign in button offers a popup.
 * Locally the hosting page gives getToken (a token minted by the Entra emulator).
 * Plain ES2017: no framework, no build step.
 */
/* global msal */
"use strict";

(function () {
    const EMPTY_TEXT = "Can't find your program in the list? You need to enable your program " +
        "in the settings. Ask your CRM administrator for help.";
    const ENTITY_NAMES = {
        contact: { one: "contact", many: "contacts", name: "fullname" },
        lead: { one: "lead", many: "leads", name: "fullname" }
    };
    const OUTCOMES = {
        "enrolled": "Enrolled",
        "already in program": "Already in the program",
        "suppressed": "Not enrolled: the address is suppressed in dotdigital",
        "no email": "Not enrolled: the record has no email address",
        "not found": "Not enrolled: the record was not found",
        "not allowed": "Not enrolled: not allowed",
        "allowance exhausted": "Not enrolled: dotdigital's hourly enrolment allowance is used up; try again later",
        "pending": "Sent: dotdigital is still processing the enrolment",
        "failed": "Not enrolled: the enrolment failed"
    };

    const el = (id) => document.getElementById(id);
    const state = { config: {}, request: null, programs: [], account: null, busy: false, names: {} };
    let msalApp = null;

    // --- settings and context ----------------------------------------------------------------
    function queryParams() {
        return new URLSearchParams(window.location.search);
    }

    function hostWindow() {
        try {
            if (window.parent && window.parent !== window && window.parent.document) {
                return window.parent;
            }
        } catch (error) {
            // another origin: nothing to read there
        }
        return null;
    }

    function findConfig() {
        if (window.ecConnectorConfig) {
            return window.ecConnectorConfig;
        }
        const host = hostWindow();
        if (host && host.ecConnectorConfig) {
            return host.ecConnectorConfig;
        }
        const params = queryParams();
        const config = {};
        ["apiBaseUrl", "clientId", "authority", "scope"].forEach((name) => {
            if (params.get(name)) {
                config[name] = params.get(name);
            }
        });
        return config;
    }

    function xrm() {
        const host = hostWindow();
        return (host && host.Xrm) || window.Xrm || null;
    }

    function loginHint() {
        const api = xrm();
        try {
            return api.Utility.getGlobalContext().userSettings.userName || "";
        } catch (error) {
            return "";
        }
    }

    /* navigateTo passes `data` as a query parameter; Dynamics may encode it once more. */
    function parseData() {
        let raw = queryParams().get("data") || queryParams().get("Data") || "";
        let parsed = null;
        for (let attempt = 0; attempt < 3 && parsed === null; attempt += 1) {
            try {
                parsed = JSON.parse(raw);
            } catch (error) {
                const decoded = decodeURIComponent(raw);
                if (decoded === raw) {
                    break;
                }
                raw = decoded;
            }
        }
        if (!parsed || !ENTITY_NAMES[parsed.entity] || !Array.isArray(parsed.ids) ||
                parsed.ids.length === 0) {
            return null;
        }
        const ids = parsed.ids.map((id) => String(id).replace(/[{}]/g, "").toLowerCase());
        return { entity: parsed.entity, ids: ids };
    }

    // --- tokens ------------------------------------------------------------------------------
    function loadScript(src) {
        return new Promise((resolve, reject) => {
            const script = document.createElement("script");
            script.src = src;
            script.onload = () => resolve();
            script.onerror = () => reject(new Error("MSAL.js could not be loaded from " + src));
            document.head.appendChild(script);
        });
    }

    async function msalClient() {
        if (msalApp) {
            return msalApp;
        }
        const config = state.config;
        if (typeof msal === "undefined") {
            await loadScript(config.msalScript || "msal_browser.min.js");
        }
        const redirectUri = config.redirectUri ||
            window.location.origin + window.location.pathname;
        msalApp = await msal.PublicClientApplication.createPublicClientApplication({
            auth: { clientId: config.clientId, authority: config.authority, redirectUri: redirectUri },
            cache: { cacheLocation: "sessionStorage" }
        });
        return msalApp;
    }

    async function msalToken(interactive) {
        const app = await msalClient();
        const hint = loginHint();
        const request = { scopes: [state.config.scope], loginHint: hint || undefined };
        if (interactive) {
            return (await app.acquireTokenPopup(request)).accessToken;
        }
        const account = app.getAllAccounts().find(
            (a) => hint && String(a.username).toLowerCase() === hint.toLowerCase());
        if (account) {
            try {
                return (await app.acquireTokenSilent({ scopes: request.scopes, account: account }))
                    .accessToken;
            } catch (error) {
                // fall through to single sign-on with the CRM session
            }
        }
        return (await app.ssoSilent(request)).accessToken;
    }

    async function token(interactive) {
        const config = state.config;
        if (typeof config.getToken === "function") {
            return config.getToken(loginHint());
        }
        if (config.clientId && config.scope) {
            return msalToken(Boolean(interactive));
        }
        throw new Error("The dialog has no sign-in settings. Ask your CRM administrator for help.");
    }

    // --- the connector's API -----------------------------------------------------------------
    class ApiError extends Error {
        constructor(status, message) {
            super(message);
            this.status = status;
        }
    }

    async function call(method, path, body) {
        let bearer;
        try {
            bearer = await token(false);
        } catch (error) {
            el("sign-in").hidden = !(state.config.clientId && state.config.scope);
            throw new ApiError(401, "You could not be signed in to the connector. " +
                (error && error.message ? error.message : ""));
        }
        const base = String(state.config.apiBaseUrl || "").replace(/\/+$/, "");
        let response;
        try {
            response = await fetch(base + path, {
                method: method,
                headers: Object.assign({ "Authorization": "Bearer " + bearer },
                    body ? { "Content-Type": "application/json" } : {}),
                body: body ? JSON.stringify(body) : undefined,
                credentials: "omit"
            });
        } catch (error) {
            throw new ApiError(0, "The connector could not be reached. Try again shortly.");
        }
        let payload = null;
        try {
            payload = await response.json();
        } catch (error) {
            payload = null;
        }
        if (!response.ok) {
            const message = payload && payload.error ? payload.error : "HTTP " + response.status;
            throw new ApiError(response.status, "The connector answered: " + message);
        }
        return payload;
    }

    // --- view --------------------------------------------------------------------------------
    function say(text) {
        el("status").textContent = text;
    }

    function showError(text) {
        const box = el("error");
        box.textContent = text || "";
        box.hidden = !text;
    }

    function setBusy(busy, text) {
        state.busy = busy;
        const form = el("programs-form");
        form.setAttribute("aria-busy", busy ? "true" : "false");
        form.classList.toggle("busy", busy);
        el("email-account").disabled = busy;
        el("program-list").querySelectorAll("input").forEach((input) => {
            input.disabled = busy || input.dataset.selectable !== "true";
        });
        el("add").textContent = busy ? "Adding\u2026" : "Add";
        updateAdd();
        if (text !== undefined) {
            say(text);
        }
    }

    function selected() {
        return Array.from(el("program-list").querySelectorAll("input:checked"))
            .map((input) => Number(input.value));
    }

    function updateAdd() {
        el("add").disabled = state.busy || selected().length === 0;
    }

    function describeRecords(request) {
        const names = ENTITY_NAMES[request.entity];
        const count = request.ids.length;
        return count === 1 ? "Enrol 1 " + names.one + " in automation programs." :
            "Enrol " + count + " " + names.many + " in automation programs.";
    }

    function renderAccounts(listing) {
        const select = el("email-account");
        select.textContent = "";
        listing.emailAccounts.forEach((account) => {
            const option = document.createElement("option");
            option.value = account.id;
            option.textContent = account.name;
            option.selected = account.id === listing.emailAccount.id;
            select.appendChild(option);
        });
        el("account-field").hidden = listing.emailAccounts.length < 2;
    }

    function renderPrograms(programs) {
        const list = el("program-list");
        list.textContent = "";
        programs.forEach((program) => {
            const item = document.createElement("li");
            item.className = program.selectable ? "program" : "program inactive";
            const input = document.createElement("input");
            input.type = "checkbox";
            input.id = "program-" + program.id;
            input.value = String(program.id);
            input.dataset.selectable = program.selectable ? "true" : "false";
            input.disabled = !program.selectable;
            input.addEventListener("change", updateAdd);
            const label = document.createElement("label");
            label.htmlFor = input.id;
            const name = document.createElement("span");
            name.className = "name";
            name.textContent = program.name;
            label.appendChild(name);
            if (!program.selectable) {
                const status = document.createElement("span");
                status.className = "badge";
                status.textContent = (program.status || "Inactive") + " \u2013 not available";
                label.appendChild(status);
            }
            item.appendChild(input);
            item.appendChild(label);
            list.appendChild(item);
        });
        const available = programs.some((program) => program.selectable);
        list.hidden = programs.length === 0;
        el("empty-state").hidden = available;
        el("empty-state").textContent = EMPTY_TEXT;
        updateAdd();
    }

    async function loadPrograms(accountId) {
        setBusy(true, "Loading programs\u2026");
        showError("");
        try {
            const query = accountId ? "?emailAccount=" + encodeURIComponent(accountId) : "";
            const listing = await call("GET", "/programs" + query);
            state.account = listing.emailAccount.id;
            state.programs = listing.programs;
            renderAccounts(listing);
            renderPrograms(listing.programs);
            setBusy(false, listing.programs.length === 0 ? "No program is available." :
                listing.programs.length + " programs listed.");
            const first = el("program-list").querySelector("input:not([disabled])");
            (first || el("cancel")).focus();
        } catch (error) {
            setBusy(false, "");
            showError(error.message);
        }
    }

    function recordLabel(id, index) {
        const names = ENTITY_NAMES[state.request.entity];
        return state.names[id] ||
            (names.one.charAt(0).toUpperCase() + names.one.slice(1) + " " + (index + 1));
    }

    async function lookUpNames(request) {
        const api = xrm();
        if (!api || !api.WebApi || typeof api.WebApi.retrieveRecord !== "function") {
            return;
        }
        const column = ENTITY_NAMES[request.entity].name;
        await Promise.all(request.ids.map(async (id) => {
            try {
                const row = await api.WebApi.retrieveRecord(request.entity, id,
                    "?$select=" + column);
                if (row && row[column]) {
                    state.names[id] = String(row[column]);
                }
            } catch (error) {
                // the user may not read it: the connector reports that per record
            }
        }));
    }

    function programName(id) {
        const found = state.programs.find((program) => program.id === id);
        return found ? found.name : "Program " + id;
    }

    function renderResults(results) {
        const body = el("results-table").querySelector("tbody");
        body.textContent = "";
        const order = state.request.ids;
        results.forEach((result) => {
            const row = document.createElement("tr");
            row.className = "outcome-" + result.outcome.replace(/\s+/g, "-");
            row.dataset.record = result.id;
            row.dataset.program = String(result.program);
            row.dataset.outcome = result.outcome;
            const record = document.createElement("th");
            record.scope = "row";
            record.textContent = recordLabel(result.id, order.indexOf(result.id));
            const program = document.createElement("td");
            program.textContent = programName(result.program);
            const outcome = document.createElement("td");
            const text = document.createElement("span");
            text.className = "outcome";
            text.textContent = OUTCOMES[result.outcome] || result.outcome;
            outcome.appendChild(text);
            const explained = result.detail ||
                (result.outcome === "not allowed" ? "You may not read this record in CRM." : "");
            if (explained) {
                const detail = document.createElement("span");
                detail.className = "detail";
                detail.textContent = explained;
                outcome.appendChild(detail);
            }
            row.appendChild(record);
            row.appendChild(program);
            row.appendChild(outcome);
            body.appendChild(row);
        });
        el("results").hidden = results.length === 0;
    }

    async function add(event) {
        event.preventDefault();
        const programs = selected();
        if (state.busy || programs.length === 0) {
            return;
        }
        showError("");
        el("results").hidden = true;
        setBusy(true, "Adding " + state.request.ids.length + " record(s) to " +
            programs.length + " program(s)\u2026");
        try {
            const body = { entity: state.request.entity, ids: state.request.ids,
                programs: programs };
            if (state.account) {
                body.emailAccount = state.account;
            }
            const answer = await call("POST", "/enrolments", body);
            const results = answer.results || [];
            const done = results.length > 0 && results.every((r) => r.outcome === "enrolled");
            renderResults(results);
            if (done) {
                setBusy(true, "Every record was enrolled. Closing\u2026");
                const delay = Number(state.config.closeDelayMs);
                window.setTimeout(closeDialog, Number.isFinite(delay) ? delay : 1000);
                return;
            }
            const enrolled = results.filter((r) => r.outcome === "enrolled").length;
            setBusy(false, enrolled + " of " + results.length +
                " enrolments succeeded. See the results below.");
            el("results-title").focus();
        } catch (error) {
            setBusy(false, "");
            showError(error.message);
            el("error").focus();
        }
    }

    /* The page's own close: the config's, Dynamics' dialog close button, else window.close(). */
    function closeDialog() {
        if (typeof state.config.close === "function") {
            state.config.close();
            return;
        }
        const host = hostWindow();
        const button = host && host.document.querySelector(
            "button[data-id='dialogCloseIconButton'], button[title='Close']");
        if (button) {
            button.click();
            return;
        }
        window.close();
    }

    async function signIn() {
        showError("");
        try {
            await token(true);
            el("sign-in").hidden = true;
            await loadPrograms(state.account);
        } catch (error) {
            showError("Sign-in failed: " + (error && error.message ? error.message : error));
        }
    }

    async function start() {
        state.config = findConfig() || {};
        el("programs-form").addEventListener("submit", add);
        el("cancel").addEventListener("click", closeDialog);
        el("sign-in").addEventListener("click", signIn);
        el("email-account").addEventListener("change", (event) => {
            el("results").hidden = true;
            loadPrograms(event.target.value);
        });
        document.addEventListener("keydown", (event) => {
            if (event.key === "Escape" && !state.busy) {
                closeDialog();
            }
        });
        el("results-title").tabIndex = -1;
        el("error").tabIndex = -1;
        state.request = parseData();
        if (!state.request) {
            showError("The dialog was opened without records. Close it and try again.");
            el("programs-fieldset").hidden = true;
            el("add").hidden = true;
            return;
        }
        el("records-summary").textContent = describeRecords(state.request);
        await Promise.all([lookUpNames(state.request), loadPrograms(null)]);
    }

    if (document.readyState === "loading") {
        document.addEventListener("DOMContentLoaded", start);
    } else {
        start();
    }
}());
