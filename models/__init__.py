from . import workflow_automation
from . import workflow_automation_component
from . import workflow_automation_trigger
from . import workflow_automation_action
from . import workflow_automation_run
from . import workflow_automation_mixin
from . import crm_lead
from . import project_project
