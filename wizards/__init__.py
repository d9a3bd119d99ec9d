from . import workflow_automation_preset_wizard
from . import workflow_automation_test_wizard
from . import workflow_automation_export
from . import workflow_automation_import_wizard
