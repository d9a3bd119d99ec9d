from . import workflow_automation_test_wizard
