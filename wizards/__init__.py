from . import workflow_automation_preset_wizard
