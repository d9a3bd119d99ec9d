/** @odoo-module **/

import { registry } from "@web/core/registry";

// An admin switches the workflow "Tour workflow" off, then on again, with the toggle of
// the list CRM > Configuration > Workflow Automations (boolean_toggle: saved at once).
const ROW = ".o_list_view .o_data_row:has(.o_data_cell[name=name]:contains('Tour workflow'))";
const TOGGLE = `${ROW} .o_field_widget[name=active] input`;

registry.category("web_tour.tours").add("crm_workflow_automation_toggle_tour", {
    url: "/odoo/action-crm_workflow_automation.workflow_automation_action_crm",
    steps: () => [
        {
            content: "The workflow is listed, switched on: toggle on, row not greyed",
            trigger: `${ROW}:not(.text-muted) .o_field_widget[name=active] input:checked`,
        },
        {
            content: "Switch the workflow off",
            trigger: TOGGLE,
            run: "click",
        },
        {
            content: "Its row is greyed and its toggle off",
            trigger: `${ROW}.text-muted .o_field_widget[name=active] input:not(:checked)`,
        },
        {
            content: "Switch the workflow on again",
            trigger: TOGGLE,
            run: "click",
        },
        {
            content: "Its row is no longer greyed and its toggle is on",
            trigger: `${ROW}:not(.text-muted) .o_field_widget[name=active] input:checked`,
        },
        {
            content: "Open the workflow",
            trigger: `${ROW} .o_data_cell[name=name]`,
            run: "click",
        },
        {
            content: "Saved on the server: the form shows it on",
            trigger: ".o_form_view .o_field_widget[name=active] input:checked",
        },
        {
            content: "The chatter tracks the switch off then on",
            trigger:
                ".o-mail-Chatter .o-mail-Message:has(.o-mail-Message-trackingField:contains('On')) ~ " +
                ".o-mail-Message:has(.o-mail-Message-trackingField:contains('On'))",
        },
    ],
});
