/** @odoo-module **/

// Steps that save a screenshot of the page for the README: the first asks
// tests/test_tours.py for it through the console once the page has settled for
// `settle` milliseconds (a graph's animation lasts one second), the second waits
// until it is saved.
export function screenshotSteps(name, { settle = 300 } = {}) {
    return [
        {
            content: `Screenshot: ${name}`,
            trigger: "body",
            run: async () => {
                await new Promise((resolve) => setTimeout(resolve, settle));
                console.log(`cwa-screenshot:${name}`);
            },
        },
        {
            content: `Screenshot ${name} saved`,
            trigger: `body[data-cwa-screenshot='${name}']`,
        },
    ];
}

// Open a menu of the current app's navbar: a section, then one of its items.
export function menuSteps(section, item) {
    return [
        {
            content: `Open the menu ${section}`,
            trigger: `.o_main_navbar button[data-menu-xmlid='${section}']`,
            run: "click",
        },
        {
            content: `Open ${item}`,
            trigger: `.o-dropdown--menu .dropdown-item[data-menu-xmlid='${item}']`,
            run: "click",
        },
    ];
}
