/*
 * Automation Programs ribbon command (contact and lead).
 *
 * The ribbon calls one function per entry point; each opens the enrolment dialog
 * (ec_/programs/dialog.html) centred over the app, passing the table's logical name and the
 * record ids as URL-encoded JSON {entity, ids} in `data`. When the dialog closes the form or
 * grid is refreshed so the enrolment shows.
 */
/* global Xrm */
"use strict";

var ec = window.ec || {};
window.ec = ec;
ec.programs = ec.programs || {};

(function (programs) {
    var DIALOG = "ec_/programs/dialog.html";

    function cleanId(id) {
        return String(id || "").replace(/[{}]/g, "").toLowerCase();
    }

    /* The `data` the dialog reads: URL-encoded JSON {entity, ids}, ids without braces. */
    function dialogData(entityName, ids) {
        var cleaned = (ids || []).map(cleanId).filter(function (id) { return id !== ""; });
        return encodeURIComponent(JSON.stringify({ entity: entityName, ids: cleaned }));
    }

    function openDialog(entityName, ids) {
        var pageInput = {
            pageType: "webresource",
            webresourceName: DIALOG,
            data: dialogData(entityName, ids)
        };
        var navigationOptions = {
            target: 2,
            position: 1,
            width: { value: 560, unit: "px" },
            height: { value: 600, unit: "px" },
            title: "Automation programs"
        };
        return Xrm.Navigation.navigateTo(pageInput, navigationOptions);
    }

    function showError(error) {
        var message = (error && error.message) || String(error);
        return Xrm.Navigation.openErrorDialog({ message: message });
    }

    /* Form: CrmParameter PrimaryControl (the form context). */
    programs.openFromForm = function (primaryControl) {
        var formContext = primaryControl;
        var id = formContext.data.entity.getId();
        if (!id) {
            return Xrm.Navigation.openAlertDialog({
                text: "Save the record before enrolling it in an automation program."
            });
        }
        var entityName = formContext.data.entity.getEntityName();
        return openDialog(entityName, [id]).then(
            function () { return formContext.data.refresh(false); },
            showError
        );
    };

    /*
     * Grid: CrmParameters SelectedControlSelectedItemIds (array of ids), SelectedControl (the
     * grid context) and SelectedEntityTypeName (the table's logical name).
     */
    programs.openFromGrid = function (selectedIds, gridControl, entityName) {
        if (!selectedIds || selectedIds.length === 0) {
            return Xrm.Navigation.openAlertDialog({ text: "Select one or more records." });
        }
        return openDialog(entityName, selectedIds).then(
            function () {
                if (gridControl && typeof gridControl.refresh === "function") {
                    gridControl.refresh();
                }
            },
            showError
        );
    };

    /* Exposed for the dialog and for checks; not called by the ribbon. */
    programs.dialogData = dialogData;
}(ec.programs));

/*
 * Engagement timeline ribbon command (contact and lead forms): opens ec_/timeline/timeline.html
 * as a large dialog with `data` URL-encoded JSON {entity, id}; it only reads, so nothing is
 * refreshed when it closes.
 */
ec.timeline = ec.timeline || {};

(function (timeline) {
    timeline.openFromForm = function (primaryControl) {
        var entity = primaryControl.data.entity;
        var id = String(entity.getId() || "").replace(/[{}]/g, "").toLowerCase();
        if (!id) {
            return Xrm.Navigation.openAlertDialog({ text: "Save the record to see its engagement." });
        }
        var data = encodeURIComponent(JSON.stringify({ entity: entity.getEntityName(), id: id }));
        return Xrm.Navigation.navigateTo(
            { pageType: "webresource", webresourceName: "ec_/timeline/timeline.html", data: data },
            { target: 2, position: 1, width: { value: 90, unit: "%" }, height: { value: 90, unit: "%" },
                title: "Engagement timeline" }
        ).then(null, function (error) {
            return Xrm.Navigation.openErrorDialog({ message: (error && error.message) || String(error) });
        });
    };
}(ec.timeline));
