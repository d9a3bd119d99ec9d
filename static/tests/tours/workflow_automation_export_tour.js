/** @odoo-module **/

import { browser } from "@web/core/browser/browser";
import { registry } from "@web/core/registry";
import { patch } from "@web/core/utils/patch";

// A workflow manager exports a workflow from its form, then imports the downloaded file
// through "Import Workflows". The browser's download is taken over: the file it would save
// is kept, and given to the import wizard's file input as a user would pick it.
let exported = null;

registry.category("web_tour.tours").add("crm_workflow_automation_export_tour", {
    steps: () => [
        {
            content: "Keep what the browser would download",
            trigger: ".o_form_view .o_field_widget[name=name]",
            run: () => {
                const unpatch = patch(browser, {
                    open(url) {
                        unpatch();
                        fetch(url).then((response) => response.blob()).then((blob) => {
                            exported = blob;
                            document.body.classList.add("o_cwa_exported");
                        });
                    },
                });
            },
        },
        {
            content: "Export the workflow from its form",
            trigger: ".o_form_view .o_statusbar_buttons button:contains('Export as XML')",
            run: "click",
        },
        {
            content: "The export dialog lists the workflow",
            trigger: ".modal .o_field_widget[name=workflow_ids] .o_tag:contains('Tour export')",
        },
        {
            content: "Download the XML file",
            trigger: ".modal button[name=action_export_xml]",
            run: "click",
        },
        {
            content: "The file is downloaded",
            trigger: "body.o_cwa_exported",
        },
        {
            content: "Close the export dialog",
            trigger: ".modal .modal-footer button:contains('Close')",
            run: "click",
        },
        {
            content: "Open the CRM configuration menu",
            trigger: "body:not(:has(.modal)) .o_main_navbar button:contains('Configuration')",
            run: "click",
        },
        {
            content: "Import workflows",
            trigger: ".dropdown-menu .dropdown-item:contains('Import Workflows')",
            run: "click",
        },
        {
            content: "Pick the downloaded file",
            trigger: ".modal .o_field_widget[name=data_file] .o_select_file_button",
            run: () => {
                const input = document.querySelector(".modal .o_field_widget[name=data_file] input[type=file]");
                const transfer = new DataTransfer();
                transfer.items.add(new File([exported], "workflow_automation_data.xml", { type: "text/xml" }));
                input.files = transfer.files;
                input.dispatchEvent(new Event("change", { bubbles: true }));
            },
        },
        {
            content: "The file is picked",
            trigger: ".modal .o_field_widget[name=data_file] input.o_input:value(workflow_automation_data.xml)",
        },
        {
            content: "Import it",
            trigger: ".modal button[name=action_import]",
            run: "click",
        },
        {
            content: "The imported workflow is listed, switched off",
            trigger: "body:not(:has(.modal)) .o_list_view .o_data_row:contains('Tour export') "
                + ".o_field_widget[name=active] input:not(:checked)",
        },
    ],
});
