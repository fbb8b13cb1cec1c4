def test_login_page_renders_the_form(client):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert b"Username" in response.content
    assert b"Log in" in response.content
