/** @odoo-module **/

import { registry } from "@web/core/registry";
import { COLUMN } from "@crm_workflow_automation/../tests/tours/kanban_steps";
import { screenshotSteps } from "@crm_workflow_automation/../tests/tours/screenshot";

// A French own-documents salesperson (tests/test_tours_board.py) hovers the icon of the
// column Proposition in her pipeline and reads what a drop there does; the other columns
// have no icon.
registry.category("web_tour.tours").add("crm_workflow_automation_drop_hint_tour", {
    url: "/odoo/action-crm.crm_lead_action_pipeline",
    steps: () => [
        {
            content: "The column New, without automations, has no icon",
            trigger: `${COLUMN("New")} .o_kanban_header:not(:has(.o_workflow_drop_hint))`,
        },
        {
            content: "Hover the icon of the column Proposition",
            trigger: `${COLUMN("Proposition")} .o_kanban_header .o_workflow_drop_hint`,
            run: "hover",
        },
        {
            content: "The tooltip says, in French, what a drop there does",
            trigger: ".o-tooltip .o_workflow_drop_hint_tooltip:contains('Une carte déposée ici')"
                + ":contains('Assigner à Carla Contracts; Ajouter un suivi « Have the contract signed » (2 jours)')",
        },
        ...screenshotSteps("board_drop_hint"),
    ],
});
