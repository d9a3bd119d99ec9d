/** @odoo-module **/

// Steps of the workflow form shared by the tours: its trigger and action dialogs.
export const TRIGGER_DIALOG = ".modal:has(.modal-title:contains('Triggers'))";
export const ACTION_DIALOG = ".modal:has(.modal-title:contains('Actions'))";

// Create a workflow from the list of the current action, and name it.
export function newWorkflowSteps(name) {
    return [
        {
            content: "Create a workflow",
            trigger: ".o_list_button_add",
            run: "click",
        },
        {
            content: "Name it",
            trigger: ".o_form_view .o_field_widget[name=name] input",
            run: `edit ${name}`,
        },
        {
            content: "Add a trigger",
            trigger: ".o_field_widget[name=trigger_ids] .o_field_x2many_list_row_add a",
            run: "click",
        },
    ];
}

// Open the (only) trigger of the workflow.
export function openTriggerSteps() {
    return [
        {
            content: "Open the trigger of the workflow",
            trigger: ".o_field_widget[name=trigger_ids] .o_data_row .o_data_cell",
            run: "click",
        },
    ];
}

export function addActionSteps(kind) {
    return [
        {
            content: "Add an action to the trigger",
            trigger: `${TRIGGER_DIALOG} .o_field_widget[name=action_ids] .o_field_x2many_list_row_add a`,
            run: "click",
        },
        ...chooseSteps(ACTION_DIALOG, "kind", kind),
    ];
}

// Look for ``text`` in the many2one or many2many ``field`` of ``dialog``, and pick it.
export function pickSteps(dialog, field, text) {
    return [
        {
            content: `Look for “${text}” in the field ${field}`,
            trigger: `${dialog} .o_field_widget[name=${field}] input`,
            run: `edit ${text}`,
        },
        {
            content: `The field offers “${text}”: pick it`,
            trigger: `${dialog} .o_field_widget[name=${field}] .o-autocomplete--dropdown-item:contains('${text}')`,
            run: "click",
        },
    ];
}

export function saveActionSteps(kind) {
    return [
        {
            content: "Save the action",
            trigger: `${ACTION_DIALOG} .o_form_button_save`,
            run: "click",
        },
        {
            content: `The trigger lists the action “${kind}”`,
            trigger: `${TRIGGER_DIALOG}:not(:has(${ACTION_DIALOG})) .o_field_widget[name=action_ids] .o_data_cell:contains('${kind}')`,
        },
    ];
}

// Save the open trigger, then the workflow.
export function saveWorkflowSteps() {
    return [
        {
            content: "Save the trigger",
            trigger: `${TRIGGER_DIALOG}:not(:has(${ACTION_DIALOG})) .o_form_button_save`,
            run: "click",
        },
        {
            content: "Save the workflow",
            trigger: "body:not(:has(.modal)) .o_form_button_save",
            run: "click",
        },
        {
            content: "Saved",
            trigger: ".o_form_saved",
        },
    ];
}

// The select of ``field`` in ``dialog`` offers the options labelled ``offered`` and none
// of those labelled ``withheld``.
export function offeredSteps(dialog, field, offered, withheld) {
    const select = `${dialog} .o_field_widget[name=${field}] select`;
    return [
        {
            content: `${field} offers ${offered.join(", ")}, not ${withheld.join(", ")}`,
            trigger:
                select +
                offered.map((label) => `:has(option:contains('${label}'))`).join("") +
                withheld.map((label) => `:not(:has(option:contains('${label}')))`).join(""),
        },
    ];
}

export function chooseSteps(dialog, field, label) {
    return [
        {
            content: `Choose “${label}”`,
            trigger: `${dialog} .o_field_widget[name=${field}] select`,
            run: `selectByLabel ${label}`,
        },
    ];
}

// Fill the open webhook action in: its address and the field Expected Revenue, which the
// sample payload then shows.
export function webhookSteps() {
    return [
        {
            content: "Give the webhook its address",
            trigger: `${ACTION_DIALOG} .o_field_widget[name=webhook_url] input`,
            run: "edit https://hooks.example.com/odoo",
        },
        ...pickSteps(ACTION_DIALOG, "webhook_field_ids", "Expected Revenue"),
        {
            content: "The sample payload shows the field",
            trigger: `${ACTION_DIALOG} .o_field_widget[name=webhook_sample_payload]:contains('expected_revenue')`,
        },
    ];
}
