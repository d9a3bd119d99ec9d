/** @odoo-module **/

import { registry } from "@web/core/registry";
import { screenshotSteps } from "@crm_workflow_automation/../tests/tours/screenshot";

// An admin on the form of the pipeline "Sales" (tests/test_tours_board.py) opens its
// Automations board, adds a trigger at the stage Proposition with the column's "+" into a new
// workflow, and switches the workflow "Board contract" off from its card.
const BOARD_COLUMN = (name) => `.o_workflow_board .o_kanban_group:has(.o_column_title:contains('${name}'))`;
const CARD = (name) => `.o_kanban_record:has(.o_workflow_board_card):contains('${name}')`;

registry.category("web_tour.tours").add("crm_workflow_automation_board_tour", {
    steps: () => [
        {
            content: "Open the pipeline's Automations board",
            trigger: ".o_form_view button[name=action_open_workflow_board]",
            run: "click",
        },
        {
            content: "The board's card of the contract workflow says what it does, in the column of its stage",
            trigger: `${BOARD_COLUMN("Proposition")} ${CARD("Board contract")}:contains('Assign to Carla Contracts')`
                + ":contains('in 3 days'):contains('E-mail “Board proposal”')",
        },
        {
            content: "The stage-to-stage trigger is in its destination, naming its origin",
            trigger: `${BOARD_COLUMN("Qualified")} ${CARD("Board welcome")}:contains('From New')`,
        },
        {
            content: "Named after the pipeline",
            trigger: ".o_breadcrumb:contains('Automations: Sales')",
        },
        {
            content: "The events have their columns after the stages",
            trigger: `${BOARD_COLUMN("Dates and inactivity")}`,
        },
        ...screenshotSteps("board"),
        {
            content: "Add a trigger at the stage Qualified",
            trigger: `${BOARD_COLUMN("Qualified")} .o_kanban_quick_add`,
            run: "click",
        },
        {
            content: "Name a new workflow",
            trigger: `${BOARD_COLUMN("Qualified")} .o_kanban_quick_create .o_field_widget[name=workflow_id] input`,
            run: "edit Board qualified call",
        },
        {
            content: "Create it",
            trigger: ".o-autocomplete--dropdown-menu .o_m2o_dropdown_option_create a",
            run: "click",
        },
        {
            content: "The stage is filled in",
            trigger: `${BOARD_COLUMN("Qualified")} .o_kanban_quick_create .o_field_widget[name=stage_id]:contains('Qualified')`,
        },
        {
            content: "Add the trigger",
            trigger: `${BOARD_COLUMN("Qualified")} .o_kanban_quick_create .o_kanban_add`,
            run: "click",
        },
        {
            content: "Its card is in the column, greyed: the new workflow is off",
            trigger: `${BOARD_COLUMN("Qualified")} ${CARD("Board qualified call")} .opacity-50`,
        },
        {
            content: "Switch the contract workflow off from its card",
            trigger: `${CARD("Board contract")} .o_field_widget[name=workflow_active] input:checked`,
            run: "click",
        },
        {
            content: "Its card is greyed, its switch off, and still on the board",
            trigger: `${CARD("Board contract")} .opacity-50 .o_field_widget[name=workflow_active] input:not(:checked)`,
        },
        {
            content: "Open the card: its trigger, editable now that the workflow is off",
            trigger: `${CARD("Board contract")} .o_workflow_board_card`,
            run: "click",
        },
        {
            content: "The trigger's form, with its actions and no lock",
            trigger: ".o_form_view:not(:has(.alert-info)) .o_field_widget[name=action_ids] .o_data_row",
        },
    ],
});
