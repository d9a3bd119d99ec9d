{
    "name": "CRM Workflow Automation",
    "version": "18.0.1.0.0",
    "category": "Sales/CRM",
    "summary": "Pipeline workflows: when a deal or project moves, assign, schedule, e-mail and more",
    "author": "crm_workflow_automation developers",
    "license": "LGPL-3",
    "depends": ["crm", "project"],
    "data": [
        "security/workflow_automation_security.xml",
        "security/ir.model.access.csv",
        "data/ir_cron_data.xml",
        "data/presets/workflow_automation_presets_crm.xml",
        "data/presets/workflow_automation_presets_project.xml",
        "views/workflow_automation_run_views.xml",
        "wizards/workflow_automation_test_wizard_views.xml",
        "views/workflow_automation_trigger_views.xml",
        "views/workflow_automation_views.xml",
        "views/workflow_automation_board_views.xml",
        "wizards/workflow_automation_preset_wizard_views.xml",
        "views/workflow_automation_menus.xml",
        "views/crm_lead_views.xml",
        "views/project_project_views.xml",
        "views/res_config_settings_views.xml",
    ],
    "demo": [
        "demo/workflow_automation_demo.xml",
    ],
    "assets": {
        "web.assets_backend": [
            "crm_workflow_automation/static/src/**/*",
        ],
        "web.assets_tests": [
            "crm_workflow_automation/static/tests/tours/*.js",
        ],
    },
    "installable": True,
    "application": False,
}
