/*
 * Deployment settings of the Automation Programs dialog (see dialog.js for every setting).
 * Fill in the Function App's API address and the single-page app registration before
 * importing the solution. A hosting page that brings its own settings (the local stand-in for a
 * CRM form) keeps them.
 */
"use strict";

(function () {
    let hosted = null;
    try {
        hosted = window.parent && window.parent !== window ? window.parent.ecConnectorConfig : null;
    } catch (error) {
        hosted = null; // another origin: Dynamics itself
    }
    if (!hosted && !window.ecConnectorConfig) {
        window.ecConnectorConfig = {
            apiBaseUrl: "https://<function app>.azurewebsites.net/api",
            clientId: "<client id of the dialog's single-page app registration>",
            authority: "https://login.microsoftonline.com/<tenant id>",
            scope: "api://connector/user_impersonation"
        };
    }
})();
