/** @odoo-module **/

import { registry } from "@web/core/registry";

// An admin tries to switch on "Tour contract", made from a preset and left with blanks:
// switching on is refused, and the form goes back to off and editable, so the admin can
// fill the blanks in.
const ON_TOGGLE = ".o_form_view .o_field_widget[name=active] input";

registry.category("web_tour.tours").add("crm_workflow_automation_refusal_tour", {
    steps: () => [
        {
            content: "The workflow is off",
            trigger: `${ON_TOGGLE}:not(:checked)`,
        },
        {
            content: "Switch it on",
            trigger: ON_TOGGLE,
            run: "click",
        },
        {
            content: "Refused: the error names the workflow and its blank",
            trigger: ".modal .modal-body:contains('Tour contract'):contains('choose the stage')",
        },
        {
            content: "Close the message",
            trigger: ".modal .modal-footer .btn-primary",
            run: "click",
        },
        {
            content: "The workflow is back to off",
            trigger: `body:not(:has(.modal)) ${ON_TOGGLE}:not(:checked)`,
        },
        {
            content: "and editable: its triggers may be changed",
            trigger: ".o_field_widget[name=trigger_ids] .o_field_x2many_list_row_add a",
        },
        {
            content: "Rename it",
            trigger: ".o_form_view .o_field_widget[name=name] input",
            run: "edit Tour contract, completed",
        },
        {
            content: "Save it",
            trigger: ".o_form_button_save",
            run: "click",
        },
        {
            content: "Saved",
            trigger: ".o_form_saved",
        },
    ],
});
