/** @odoo-module **/

import { registry } from "@web/core/registry";

// An own-documents salesman on his deal "Opportunity 0" (set up by tests/test_access.py),
// which has a scheduled webhook: he opens its runs and one of them, and sees no button
// of the workflow managers and no link to the workflow.
const NO_MANAGER_BUTTON = "body:not(:has(button[name=action_run_now], button[name=action_cancel], "
    + "button[name=action_retry]))";

registry.category("web_tour.tours").add("crm_workflow_automation_salesman_runs_tour", {
    steps: () => [
        {
            content: "Open the scheduled automations of the deal",
            trigger: ".o_form_view button[name=action_open_workflow_runs]",
            run: "click",
        },
        {
            content: "The list shows the deal's scheduled run, and the search panel its workflow",
            trigger: ".o_list_view .o_data_row:contains('Opportunity 0'):contains('Scheduled')",
        },
        {
            trigger: ".o_search_panel:contains('Test workflow')",
        },
        {
            content: "Select the run",
            trigger: ".o_list_view .o_data_row .o_list_record_selector input",
            run: "click",
        },
        {
            content: "Selected: no Run now, Cancel or Retry for him",
            trigger: ".o_list_selection_box",
        },
        {
            trigger: NO_MANAGER_BUTTON,
        },
        {
            content: "Unselect the run",
            trigger: ".o_list_view .o_data_row .o_list_record_selector input:checked",
            run: "click",
        },
        {
            content: "Open the run",
            trigger: ".o_list_view .o_data_row td[name=record_name]",
            run: "click",
        },
        {
            content: "Its form shows the workflow, not as a link, and no button of the managers",
            trigger: ".o_form_view .o_field_widget[name=workflow_id]:contains('Test workflow'):not(:has(a))",
        },
        {
            trigger: NO_MANAGER_BUTTON,
        },
    ],
});
