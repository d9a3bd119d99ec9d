from . import test_actions
from . import test_engine
from . import test_queue
from . import test_queue_concurrency
from . import test_tours
from . import test_translation
from . import test_triggers
from . import test_workflow
