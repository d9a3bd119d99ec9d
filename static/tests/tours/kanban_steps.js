/** @odoo-module **/

// Steps of the CRM kanban shared by the tours: a stage's column, and a card dragged to another.
export const COLUMN = (stage) => `.o_opportunity_kanban .o_kanban_group:has(.o_column_title:contains('${stage}'))`;

// ``card`` (a selector) is in the column of ``from``: drag it to the column of ``to``.
export function dragCardSteps(card, from, to) {
    return [
        {
            content: `The card is in the ${from} column`,
            trigger: `${COLUMN(from)} ${card}`,
        },
        {
            content: `Drag it to the ${to} column`,
            trigger: `${COLUMN(from)} ${card}`,
            // Parenthesized: the run parser would eat the selector's closing parenthesis.
            run: `drag_and_drop (${COLUMN(to)})`,
        },
    ];
}
