import flow_api

def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    my_connection = this.connect(
        connector_type='GIT',
        command='get',
        repository_url='https://example.com/path/to/repo.git',
    )
    # read the outputs of the connection and log them
    this.log(my_connection.get('output_value'))

    return this.success('all done')
