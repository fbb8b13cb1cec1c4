from django.urls import path

from dealdesk.board import views as board_views

app_name = "board"

urlpatterns = [
    path("", board_views.board_view, name="board"),
    path("move/", board_views.board_move_view, name="move"),
]
