/*
 * A small stand-in for the Dynamics 365 client API (Xrm) and for the settings a CRM page gives
 * the Automation Programs dialog (window.ecConnectorConfig). Local use only.
 */
"use strict";

(function () {
    var context = null;  // GET /_crm/context: user, apiBaseUrl, records
    var stack = [];      // open dialogs

    function record(entity, id) {
        var wanted = String(id || "").replace(/[{}]/g, "").toLowerCase();
        return (context.records || []).find(function (r) {
            return r.entity === entity && r.id.toLowerCase() === wanted;
        });
    }

    function navigateTo(pageInput, options) {
        return new Promise(function (resolve) {
            var opener = document.activeElement;
            var backdrop = document.createElement("div");
            backdrop.className = "dialog-backdrop";
            var frame = document.createElement("div");
            frame.className = "dialog-frame";
            frame.setAttribute("role", "dialog");
            frame.setAttribute("aria-modal", "true");
            frame.setAttribute("aria-labelledby", "dialog-title-" + stack.length);
            var width = options && options.width ? options.width.value + (options.width.unit || "px") : "560px";
            var height = options && options.height ? options.height.value + (options.height.unit || "px") : "600px";
            frame.style.width = width;
            frame.style.height = height;
            var title = document.createElement("div");
            title.className = "dialog-title";
            var text = document.createElement("span");
            text.id = "dialog-title-" + stack.length;
            text.textContent = (options && options.title) || "";
            var close = document.createElement("button");
            close.type = "button";
            close.setAttribute("data-id", "dialogCloseIconButton");
            close.setAttribute("aria-label", "Close");
            close.title = "Close";
            close.textContent = "\u2715";
            title.appendChild(text);
            title.appendChild(close);
            var iframe = document.createElement("iframe");
            iframe.title = (options && options.title) || "Dialog";
            iframe.src = "/WebResources/" + pageInput.webresourceName +
                (pageInput.data ? "?data=" + pageInput.data : "");
            frame.appendChild(title);
            frame.appendChild(iframe);
            backdrop.appendChild(frame);
            document.body.appendChild(backdrop);
            stack.push(backdrop);
            iframe.addEventListener("load", function () { iframe.focus(); });
            close.addEventListener("click", function () {
                backdrop.remove();
                stack.splice(stack.indexOf(backdrop), 1);
                if (opener && typeof opener.focus === "function") {
                    opener.focus();
                }
                resolve({ returnValue: null });
            });
        });
    }

    window.Xrm = {
        Navigation: {
            navigateTo: navigateTo,
            openAlertDialog: function (alert) { window.alert(alert.text); return Promise.resolve(); },
            openErrorDialog: function (error) { window.alert(error.message); return Promise.resolve(); }
        },
        Utility: {
            getGlobalContext: function () {
                return {
                    userSettings: { userName: context.user, userId: "{00000000-0000-0000-0000-000000000000}", languageId: 1033 },
                    getClientUrl: function () { return window.location.origin; }
                };
            }
        },
        WebApi: {
            retrieveRecord: function (entity, id) {
                var found = record(entity, id);
                if (!found) {
                    return Promise.reject(new Error("Record not found"));
                }
                return Promise.resolve({ fullname: found.name, emailaddress1: found.email });
            }
        }
    };

    /* Local token source: the page server mints the user's token with the Entra emulator. */
    window.ecConnectorConfig = {
        apiBaseUrl: "",
        closeDelayMs: 1000,
        getToken: function () {
            return fetch("/_crm/token", { method: "POST" }).then(function (response) {
                if (!response.ok) {
                    throw new Error("no token (HTTP " + response.status + ")");
                }
                return response.json();
            }).then(function (body) { return body.accessToken; });
        }
    };

    window.crmStandIn = {
        ready: fetch("/_crm/context").then(function (r) { return r.json(); }).then(function (loaded) {
            context = loaded;
            window.ecConnectorConfig.apiBaseUrl = loaded.apiBaseUrl;
            window.ecConnectorConfig.closeDelayMs = loaded.closeDelayMs;
            return loaded;
        }),
        record: record
    };
}());
