from facility.api.routing import uri
from tasks.api import views, viid

urlpatterns = [
    uri("CAP/AlgoTasks", views.TasksView.as_view(), "cap-tasks"),
    uri("CAP/AlgoTasks:search", views.TaskSearchView.as_view(), "cap-tasks-search"),
    uri("CAP/AlgoTasks/{id}", views.TaskView.as_view(), "cap-task"),
    uri("CAP/AlgoTasks/{id}:resume", views.TaskResumeView.as_view(), "cap-task-resume"),
    uri("CAP/AlgoTasks/{id}:pause", views.TaskPauseView.as_view(), "cap-task-pause"),
    uri("CAD/AlgoTasks", views.CadTasksView.as_view(), "cad-tasks"),
    uri("CAD/AlgoTasks:search", views.CadTaskSearchView.as_view(), "cad-tasks-search"),
    uri("CAD/AlgoTasks/{id}", views.CadTaskView.as_view(), "cad-task"),
    uri("CAD/AlgoTasks/{id}:resume", views.CadTaskResumeView.as_view(), "cad-task-resume"),
    uri("CAD/AlgoTasks/{id}:pause", views.CadTaskPauseView.as_view(), "cad-task-pause"),
    uri("internal/engine-events", views.EngineEventIntakeView.as_view(), "engine-events"),
    uri("api/deliveries:replay", views.DeliveryReplayView.as_view(), "deliveries-replay"),
    # GA/T 1400 image input (docs/gat1400.md "Image input")
    uri("VIID/Images", viid.ImageIntakeView.as_view(), "viid-images"),
    uri("VIID/SubscribeNotifications", viid.NotificationIntakeView.as_view(), "viid-notifications"),
]
