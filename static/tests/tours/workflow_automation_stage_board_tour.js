/** @odoo-module **/

import { registry } from "@web/core/registry";
import { COLUMN } from "@crm_workflow_automation/../tests/tours/kanban_steps";

// An admin in the CRM kanban (tests/test_tours_board.py) opens the automations of the
// column Proposition from its gear menu: the board, on that column.
registry.category("web_tour.tours").add("crm_workflow_automation_stage_board_tour", {
    url: "/odoo/action-crm.crm_lead_action_pipeline",
    steps: () => [
        {
            content: "Open the gear menu of the column Proposition (shown on hover, which CSS gives no tour)",
            trigger: `${COLUMN("Proposition")} .o_kanban_config button:not(:visible)`,
            run: "click",
        },
        {
            content: "Open its automations",
            trigger: ".o-dropdown--kanban-config-menu .o_workflow_board_open",
            run: "click",
        },
        {
            content: "The board of the pipeline, on the column Proposition, shows its card",
            trigger: ".o_searchview_facet:contains('Proposition')",
        },
        {
            trigger: ".o_workflow_board .o_kanban_group:has(.o_column_title:contains('Proposition')) "
                + ".o_kanban_record:contains('Board contract')",
        },
        {
            content: "The other columns' cards are filtered out",
            trigger: ".o_workflow_board:not(:has(.o_kanban_record:contains('Board welcome')))",
        },
    ],
});
