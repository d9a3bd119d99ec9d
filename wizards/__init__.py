from . import workflow_automation_preset_wizard
from . import workflow_automation_test_wizard
