/** @odoo-module **/

import { registry } from "@web/core/registry";
import { COLUMN, dragCardSteps } from "@crm_workflow_automation/../tests/tours/kanban_steps";

// A French salesperson restricted to her own opportunities drags "Hand-off opportunity" to
// the "Qualified" column. The workflow set up by tests/test_tours_handoff.py hands it to
// "Handoff Owner": she can no longer read it, yet the drag is saved, without any error.
const CARD = ".o_kanban_record:contains('Hand-off opportunity')";

registry.category("web_tour.tours").add("crm_workflow_automation_handoff_tour", {
    url: "/odoo/action-crm.crm_lead_action_pipeline",
    steps: () => [
        ...dragCardSteps(CARD, "New", "Qualified"),
        {
            content: "Saved: the card stays in the Qualified column and shows its new owner",
            trigger: `${COLUMN("Qualified")} ${CARD} .o_field_widget[name=user_id] [data-tooltip='Handoff Owner']`,
        },
        {
            content: "No error dialog: the page is usable, reload the pipeline",
            trigger: "body:not(:has(.o_error_dialog)) .o_searchview_input",
            run: "edit Hand-off && press Enter",
        },
        {
            content: "Reloaded: the opportunity, now someone else's, has left her pipeline",
            trigger: `.o_opportunity_kanban:not(:has(${CARD}))`,
        },
    ],
});
