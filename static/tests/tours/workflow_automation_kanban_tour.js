/** @odoo-module **/

import { registry } from "@web/core/registry";
import { COLUMN, dragCardSteps } from "@crm_workflow_automation/../tests/tours/kanban_steps";

// A salesperson drags "Tour opportunity" to the "Qualified" column of the pipeline. A
// switched-on workflow (set up by tests/test_tours.py) then reassigns the opportunity to
// "Tour Owner" and schedules the call "Call Tour Customer" for its (new) salesperson.
const CARD = ".o_kanban_record:contains('Tour opportunity')";

registry.category("web_tour.tours").add("crm_workflow_automation_kanban_tour", {
    url: "/odoo/action-crm.crm_lead_action_pipeline",
    steps: () => [
        ...dragCardSteps(CARD, "New", "Qualified"),
        {
            content: "Saved: the card, in the Qualified column, shows the owner set by the workflow",
            trigger: `${COLUMN("Qualified")} ${CARD} .o_field_widget[name=user_id] [data-tooltip='Tour Owner']`,
        },
        {
            content: "The card shows the call scheduled by the workflow",
            trigger: `${COLUMN("Qualified")} ${CARD} .o-mail-ActivityButton[title='Call Tour Customer']`,
        },
        {
            content: "Open the opportunity",
            trigger: `${COLUMN("Qualified")} ${CARD}`,
            run: "click",
        },
        {
            content: "The form shows the Qualified stage",
            trigger: ".o_form_view .o_statusbar_status button.o_arrow_button_current:contains('Qualified')",
        },
        {
            content: "The salesperson is the owner set by the workflow",
            trigger: ".o_form_view .o_field_widget[name=user_id] input:value(Tour Owner)",
        },
        {
            content: "The chatter lists the call scheduled by the workflow, for the new owner",
            trigger: ".o-mail-Chatter .o-mail-Activity:contains('Call Tour Customer'):contains('for Tour Owner')",
        },
    ],
});
