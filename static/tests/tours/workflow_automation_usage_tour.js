/** @odoo-module **/

import { registry } from "@web/core/registry";
import { menuSteps, screenshotSteps } from "@crm_workflow_automation/../tests/tours/screenshot";

// An admin opens the usage report (set up by tests/test_tours.py: a working and a failing
// workflow, with runs over several days): the graph, the pivot by workflow, a failed run
// with its error and Retry button, and the counts in the list of workflows.
registry.category("web_tour.tours").add("crm_workflow_automation_usage_tour", {
    url: "/odoo/action-crm_workflow_automation.workflow_automation_action_crm",
    steps: () => [
        ...menuSteps("crm.crm_menu_config", "crm_workflow_automation.workflow_automation_run_menu_report_crm"),
        {
            content: "The report opens on the graph of runs per day, with the search panel",
            trigger: ".o_action:has(.o_search_panel .o_search_panel_section:contains('Workflow')) .o_graph_renderer canvas",
        },
        {
            content: "The search panel lists the workflows",
            trigger: ".o_search_panel li:contains('Tour failing')",
        },
        ...screenshotSteps("usage_graph", { settle: 1500 }),
        {
            content: "Switch to the pivot",
            trigger: ".o_switch_view.o_pivot",
            run: "click",
        },
        {
            content: "One row per workflow, one column per state",
            trigger: ".o_pivot:has(th:contains('Failed')) th:contains('Tour failing')",
        },
        ...screenshotSteps("usage_pivot"),
        {
            content: "Keep only the failed runs",
            trigger: ".o_search_panel li:contains('Failed') input",
            run: "click",
        },
        {
            content: "Switch to the list",
            trigger: ".o_switch_view.o_list",
            run: "click",
        },
        {
            content: "Open a failed run",
            trigger: ".o_list_view .o_data_row:has(.o_data_cell[name=state]:contains('Failed')) .o_data_cell[name=record_name]",
            run: "click",
        },
        {
            content: "It shows its error and a Retry button",
            trigger: ".o_form_view:has(button[name=action_retry]) .alert-danger:contains('Error')",
        },
        ...screenshotSteps("failed_run"),
        ...menuSteps("crm.crm_menu_config", "crm_workflow_automation.workflow_automation_menu_crm"),
        {
            content: "The list of workflows shows each one's runs, failures and last run",
            trigger: ".o_list_view .o_data_row:has(.o_data_cell[name=name]:contains('Tour failing')) .o_data_cell[name=run_failed_count]:contains(4)",
        },
        ...screenshotSteps("usage_list"),
    ],
});
